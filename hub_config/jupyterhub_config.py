# JupyterHub configuration of INFRACALC: the door researchers use, from their own workstation.
#
# Two modes, chosen by INFRACALC_HUB_MODE:
#   production  DockerSpawner bubbles on the internal `bubbles` network (docker-compose.yml);
#   local       `infracalc up` and the tests: each bubble a local process in its own network
#               namespace (when the hub runs as root), reaching only the hub, the service and the
#               egress proxy.
# Required values are read with os.environ[...] so that a missing one stops the hub at start with
# its name. The INFRACALC parts (authenticator, spawners, hooks) live in infracalc/hub/.
import os
import sys

from infracalc.hub import hooks
from infracalc.hub.bubbles import ServiceClient

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - JupyterHub provides it

#: ``INFRACALC_HUB_MODE`` (required): ``production`` (Docker bubbles, docker-compose.yml) or ``local``
#: (``infracalc up``).
mode = os.environ["INFRACALC_HUB_MODE"]
if mode not in {"production", "local"}:
    raise SystemExit(f"INFRACALC_HUB_MODE must be production or local, not {mode!r}")

#: ``INFRACALC_KEYCLOAK_URL`` (required): Keycloak as browsers reach it, the tokens' issuer.
keycloak_url = os.environ["INFRACALC_KEYCLOAK_URL"].rstrip("/")
#: ``INFRACALC_KEYCLOAK_INTERNAL_URL``: where the hub asks Keycloak for tokens and keys (default:
#: ``INFRACALC_KEYCLOAK_URL``).
keycloak_internal_url = os.environ.get("INFRACALC_KEYCLOAK_INTERNAL_URL", keycloak_url).rstrip("/")
#: ``INFRACALC_HUB_URL`` (required): the hub as browsers reach it (Keycloak sends them back to its callback).
hub_url = os.environ["INFRACALC_HUB_URL"].rstrip("/")
#: ``INFRACALC_SERVICE_URL`` (required): the INFRACALC service, which registers and revokes bubbles.
service_url = os.environ["INFRACALC_SERVICE_URL"].rstrip("/")
#: ``INFRACALC_JUPYTERHUB_CLIENT_SECRET`` (required): the ``jupyterhub`` client's secret in the realm.
client_secret = os.environ["INFRACALC_JUPYTERHUB_CLIENT_SECRET"]
#: ``INFRACALC_HUB_DATA``: the hub's database, cookie secret and (local mode) the bubbles' folders.
data_dir = os.environ.get("INFRACALC_HUB_DATA", "/srv/jupyterhub")

# --- Sign-in: Keycloak, password and one-time code, every time -----------------------------------

# People sign in through Keycloak's realm `infracalc`; the authenticator refuses any ID token
# without acr=mfa (at login and at every refresh) and asks OPA about the source address.
c.JupyterHub.authenticator_class = "infracalc.hub.authenticator.InfracalcAuthenticator"
c.InfracalcAuthenticator.keycloak_url = keycloak_url
c.InfracalcAuthenticator.keycloak_internal_url = keycloak_internal_url
c.InfracalcAuthenticator.client_secret = client_secret
# Keycloak sends the browser back here, and only here (the realm lists this exact URI).
c.InfracalcAuthenticator.oauth_callback_url = f"{hub_url}/hub/oauth_callback"
# OPA decides whether a login may come from its source address (infracalc.login).
#: ``INFRACALC_OPA_URL`` (required): OPA, asked about every sign-in's source address (``infracalc.login``).
c.InfracalcAuthenticator.opa_url = os.environ["INFRACALC_OPA_URL"]
# Only these peers may tell the hub, with X-Forwarded-For, where a browser really is.
#: ``INFRACALC_HUB_TRUSTED_PROXIES``: comma-separated networks of the reverse proxies whose ``X-Forwarded-For``
#: the hub believes (default: loopback).
if "INFRACALC_HUB_TRUSTED_PROXIES" in os.environ:
    c.InfracalcAuthenticator.trusted_proxies = os.environ["INFRACALC_HUB_TRUSTED_PROXIES"].split(",")
# Anyone who passed both factors may sign in; what they may start is decided per project, at spawn.
c.Authenticator.allow_all = True
# Re-check the tokens (and so the second factor) before each spawn.
c.Authenticator.refresh_pre_spawn = True
# Tokens are kept encrypted in the hub's database with JUPYTERHUB_CRYPT_KEY (required).
c.Authenticator.enable_auth_state = True

# --- Bubbles: one per (user, project), the server name being the project id ---------------------

# Named servers are the bubbles; the default (unnamed) server only lists the projects.
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
# The spawn page lists the user's projects with their governance.
c.Spawner.options_form = hooks.options_form
# A bubble opens on JupyterLab (without it the single-user server shows only "A Jupyter Server is running.").
c.Spawner.default_url = "/lab"
# Before a start: the service checks membership, registers the bubble (token, session) and the
# bubble gets its API, token, project and proxy credentials.
c.Spawner.pre_spawn_hook = hooks.pre_spawn_hook
# After a stop: the bubble's token is revoked and its session closed.
c.Spawner.post_stop_hook = hooks.post_stop_hook
hooks.configure(
    ServiceClient(
        service_url,
        f"{keycloak_internal_url}/realms/infracalc/protocol/openid-connect/token",
        "jupyterhub",
        client_secret,
    ),
    hooks.BubbleEndpoints(
        #: ``INFRACALC_BUBBLE_API_URL``: production: the service's API as bubbles reach it on their network.
        api_url=os.environ.get("INFRACALC_BUBBLE_API_URL", "http://service:8000/api/v1"),
        #: ``INFRACALC_BUBBLE_PROXY_URL``: production: the egress proxy as bubbles reach it.
        proxy_url=os.environ.get("INFRACALC_BUBBLE_PROXY_URL", "http://egress-proxy:3128"),
        no_proxy=("jupyterhub", "service"),
    )
    if mode == "production"
    else None,
)

# Stop bubbles idle for INFRACALC_HUB_IDLE_TIMEOUT seconds (an hour by default): an idle bubble
# still holds memory, a bubble token and an open session. Volumes and files stay.
#: ``INFRACALC_HUB_IDLE_TIMEOUT``: seconds of inactivity after which a bubble is stopped.
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={int(os.environ.get('INFRACALC_HUB_IDLE_TIMEOUT', '3600'))}",
        ],
    },
]
#: ``INFRACALC_HUB_SERVICE_TOKEN`` (required): the INFRACALC service's token with the hub's API, through which
#: it stops the server of every bubble it revokes (a member removed, a person offboarded): it may stop servers
#: and nothing else (the service's ``INFRACALC_HUB_API_TOKEN``).
c.JupyterHub.services.append({"name": "infracalc", "api_token": os.environ["INFRACALC_HUB_SERVICE_TOKEN"]})
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
    {"name": "infracalc-revocations", "scopes": ["delete:servers"], "services": ["infracalc"]},
]

# The hub's database and cookie secret outlive restarts.
c.JupyterHub.db_url = f"sqlite:///{data_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{data_dir}/jupyterhub_cookie_secret"

if mode == "production":
    # --- Production: hardened Docker containers (infracalc/hub/docker.py enforces the isolation:
    # internal network only, no published port, limits, no capabilities, named volumes only) ----

    # Spawn bubbles as hardened Docker containers.
    c.JupyterHub.spawner_class = "infracalc.hub.docker.InfracalcDockerSpawner"
    # The bubble image, pinned by tag (`latest` and untagged names are refused); built on this host
    # and never pulled, so an image of the same name on a public registry cannot stand in for it.
    #: ``INFRACALC_BUBBLE_IMAGE`` (production, required): the bubble image, pinned by tag, built on the host.
    c.InfracalcDockerSpawner.image = os.environ["INFRACALC_BUBBLE_IMAGE"]
    # The internal network whose only other members are the hub, the service and the egress proxy;
    # the hub reaches each bubble at its address there, so no port is published.
    #: ``INFRACALC_BUBBLE_NETWORK`` (production, required): the internal Docker network of the bubbles.
    c.InfracalcDockerSpawner.network_name = os.environ["INFRACALC_BUBBLE_NETWORK"]
    c.InfracalcDockerSpawner.use_internal_ip = True
    # Bubbles reach the hub's API by the hub container's name on that network.
    c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 - the container's networks; 8081 is not published
    c.JupyterHub.hub_connect_ip = "jupyterhub"
    # What one bubble may take of the machine; size them to the host and the number of researchers.
    #: ``INFRACALC_BUBBLE_MEM_LIMIT``, ``INFRACALC_BUBBLE_CPU_LIMIT``, ``INFRACALC_BUBBLE_PIDS_LIMIT`` (production):
    #: one bubble's memory, CPUs and processes.
    c.InfracalcDockerSpawner.mem_limit = os.environ.get("INFRACALC_BUBBLE_MEM_LIMIT", "4G")
    c.InfracalcDockerSpawner.cpu_limit = float(os.environ.get("INFRACALC_BUBBLE_CPU_LIMIT", "2"))
    c.InfracalcDockerSpawner.pids_limit = int(os.environ.get("INFRACALC_BUBBLE_PIDS_LIMIT", "512"))
    # Remove a bubble's container when it stops: what a researcher keeps lives in the project's and
    # the user's volumes (/home/jovyan/project, /home/jovyan/work), never in the container.
    c.InfracalcDockerSpawner.remove = True
    # The public port, behind the site's TLS reverse proxy.
    c.JupyterHub.bind_url = "http://0.0.0.0:8000"
else:
    # --- Local: each bubble a process in its own network namespace (infracalc/hub/spawner.py) ---

    #: ``INFRACALC_HUB_PORT`` (local, required): the hub's public port.
    #: ``INFRACALC_HUB_API_PORT`` (local): the hub's own API, which bubbles reach on their gateway.
    hub_port = int(os.environ["INFRACALC_HUB_PORT"])
    hub_api_port = int(os.environ.get("INFRACALC_HUB_API_PORT", "8081"))
    # Spawn bubbles as local processes, isolated in network namespaces when the hub runs as root.
    c.JupyterHub.spawner_class = "infracalc.hub.spawner.LocalBubbleSpawner"
    # Isolation can be switched off for a trial on a workstation (the hub's log then says, for every
    # bubble, that egress is not enforced); never for data.
    #: ``INFRACALC_HUB_ISOLATE_BUBBLES`` (local): ``false`` runs bubbles as plain processes, egress not enforced
    #: (a trial only).
    c.LocalBubbleSpawner.isolate = os.environ.get("INFRACALC_HUB_ISOLATE_BUBBLES", "true") != "false"
    # The service and the egress proxy on this machine; bubbles reach their ports on their gateway.
    c.LocalBubbleSpawner.service_url = service_url
    #: ``INFRACALC_EGRESS_PROXY_URL`` (local, required): the egress proxy on this machine.
    c.LocalBubbleSpawner.egress_proxy_url = os.environ["INFRACALC_EGRESS_PROXY_URL"]
    # Bubbles' connections to the proxy reach it through this socket, with the bubble's address: the
    # proxy lets a bubble's credentials work from that address only.
    c.LocalBubbleSpawner.egress_proxy_socket = os.environ["INFRACALC_EGRESS_FORWARDED_SOCKET"]
    #: ``INFRACALC_EGRESS_CA_CERT`` (local): the egress CA's certificate as the proxy publishes it (never its key);
    #: bubbles trust it, for the hosts the proxy inspects. Empty: inspect rules cannot be used.
    c.LocalBubbleSpawner.egress_ca_cert = os.environ.get("INFRACALC_EGRESS_CA_CERT", "")
    c.LocalBubbleSpawner.hub_api_url = f"http://127.0.0.1:{hub_api_port}"
    # Each user's files, one folder per project, under the local state directory (never shared
    # between two projects, like the production bubbles' volumes).
    c.LocalBubbleSpawner.home_dir_template = os.path.join(data_dir, "bubbles", "{username}", "{project}")
    # A first start installs nothing, but a loaded machine (many bubbles starting at once on a few
    # cores) can take a while to start Jupyter and to have it answer.
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    # Browsers reach the hub on loopback only, like every server of the local stack.
    c.JupyterHub.bind_url = f"http://127.0.0.1:{hub_port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_api_port}"
    # JupyterHub's proxy, installed by `infracalc tools install`.
    #: ``INFRACALC_CHP_PATH`` (local, required): configurable-http-proxy's program (``infracalc up`` gives it).
    #: ``INFRACALC_CHP_API_PORT`` (local): configurable-http-proxy's API port.
    c.ConfigurableHTTPProxy.command = [os.environ["INFRACALC_CHP_PATH"]]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('INFRACALC_CHP_API_PORT', '8002'))}"
