"""The load balancers of the drain tests and the demo, each fed the Service's endpoints or its routes.

`haproxy` (Debian) as haproxy-ingress configures it with drain support, `nginx` (Debian) as a plain
reverse proxy with cookie-hash stickiness, and `traefik` (built from the Go module proxy), a real ingress
controller that reads Ingresses, Gateways and HTTPRoutes from the apiserver itself.
"""
