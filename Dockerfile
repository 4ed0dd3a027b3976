# syntax=docker/dockerfile:1
# Images of webapp-scaler; build one with `docker build --target <stage> .`:
#   operator  the kopf operator (manifests/operator/deployment.yaml runs it)
#   agent     the session agent and the sample web shop

# ---------------------------------------------------------------------------------------------------
# agent: the session agent (and the sample web shop), for a sidecar container next to a web app or for
# trying the agent without a VM. VMs install it from a wheel instead (sidecar/cloud-init/).
#   docker build --target agent -t webapp-scaler-agent .
#   docker run -p 8080:8080 -p 9100:9100 webapp-scaler-agent \
#       --source proxy --listen 0.0.0.0:8080 --upstream http://app:8081 --metrics-listen 0.0.0.0:9100
FROM python:3.11-slim AS agent
# Only the agent's dependencies (the ranges of pyproject.toml), not the operator's.
RUN pip install --no-cache-dir "aiohttp>=3.9,<4" "prometheus-client>=0.20,<1" "uvloop>=0.19,<1"
COPY sidecar/session_agent /opt/webapp-scaler/session_agent
COPY sidecar/webshop /opt/webapp-scaler/webshop
ENV PYTHONPATH=/opt/webapp-scaler \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin agent
USER 10001
EXPOSE 8080 9100
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m", "session_agent"]
CMD ["--source", "proxy", "--listen", "0.0.0.0:8080", "--upstream", "http://127.0.0.1:8081", "--metrics-listen", "0.0.0.0:9100"]

# ---------------------------------------------------------------------------------------------------
# operator: `webapp-scaler operator`, non-root, read-only root filesystem friendly (no writes at run time).
#   docker build --target operator -t webapp-scaler-operator .
FROM python:3.11-slim AS operator-build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY sidecar ./sidecar
COPY emulator ./emulator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS operator
COPY --from=operator-build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin operator
USER 10001
EXPOSE 9090 8081
ENTRYPOINT ["webapp-scaler"]
CMD ["operator", "--all-namespaces", "--standalone"]
