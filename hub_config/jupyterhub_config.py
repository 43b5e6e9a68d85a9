"""JupyterHub configuration for notebook-platform: `jupyterhub -f /path/to/hub_config/jupyterhub_config.py`.

Operator settings come from `HUB_*` environment variables and the values file named by `HUB_SETTINGS_FILE`
(see hub_config/settings.py and docs/hub.md); `configure_hub` turns them into ordinary `c.JupyterHub.*`,
`c.KubeSpawner.*` and authenticator traits. Anything below this call may override them, KubeSpawner style.
"""

from hub_config.config import configure_hub

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (injected by traitlets' config loader)
configure_hub(c)
