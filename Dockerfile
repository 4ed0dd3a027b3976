# syntax=docker/dockerfile:1
# Images of webapp-scaler; build one with `docker build --target <stage> .`:
#   operator  the kopf operator (manifests/base/deployment.yaml runs it): the `webapp-scaler` distribution
#   agent     the session agent: the `webapp-scaler-session-agent` distribution
# Each stage copies and installs its own distribution's directory only; the dependency ranges are those of
# that directory's pyproject.toml, never repeated here (tests/unit/test_dockerfile.py keeps it so).

# ---------------------------------------------------------------------------------------------------
# agent: the session agent, for a sidecar container next to a web app or for trying the agent without a
# VM. VMs install the same distribution from a wheel instead (sidecar/cloud-init/).
#   docker build --target agent -t webapp-scaler-agent .
#   docker run -p 8080:8080 -p 9100:9100 webapp-scaler-agent \
#       --source proxy --listen 0.0.0.0:8080 --upstream http://app:8081 --metrics-listen 0.0.0.0:9100
FROM python:3.11-slim AS agent-build
WORKDIR /src
COPY sidecar ./sidecar
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./sidecar

FROM python:3.11-slim AS agent
COPY --from=agent-build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
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
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./operator

FROM python:3.11-slim AS operator
COPY --from=operator-build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin operator
USER 10001
EXPOSE 9090 8081
ENTRYPOINT ["webapp-scaler"]
CMD ["operator", "--all-namespaces", "--standalone"]
