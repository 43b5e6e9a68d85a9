# One multi-stage file: a target per service (webhook, builder, hub, proxy) and the notebook image.
#
# Built by Kaniko on the local node (hack/project-images.sh), FROM the Debian image that hack/images.sh makes
# with debootstrap (BASE). Python packages come from wheels/ in the build context (`pip wheel` on the build
# machine), configurable-http-proxy from node_modules/ (`npm ci` of package-lock.json on the build machine):
# no stage needs PyPI or npm, so builds also work where pods cannot verify those registries' TLS certificates.
ARG BASE

FROM ${BASE} AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

FROM python AS app
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels notebook-platform && rm -rf /tmp/wheels
USER 65532:65532

FROM app AS webhook
ENTRYPOINT ["notebook-platform-webhook"]

FROM app AS builder
ENTRYPOINT ["notebook-platform-builder"]

FROM python AS hub
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels 'notebook-platform[hub]' && rm -rf /tmp/wheels \
 && mkdir -p /etc/jupyterhub /srv/jupyterhub \
 && ln -s "$(python -c 'import hub_config, os; print(os.path.dirname(hub_config.__file__))')/jupyterhub_config.py" \
      /etc/jupyterhub/jupyterhub_config.py
WORKDIR /srv/jupyterhub
USER 65532:65532
CMD ["jupyterhub", "--config", "/etc/jupyterhub/jupyterhub_config.py"]

# JupyterHub's proxy: Debian's Node.js and configurable-http-proxy as pinned by package-lock.json. The chart
# runs `configurable-http-proxy ...` as user 65532 on a read-only root file system.
FROM ${BASE} AS proxy
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*
COPY node_modules/ /opt/configurable-http-proxy/node_modules/
RUN ln -s /opt/configurable-http-proxy/node_modules/configurable-http-proxy/bin/configurable-http-proxy \
      /usr/local/bin/configurable-http-proxy \
 && configurable-http-proxy --version
USER 65532:65532
EXPOSE 8000 8001
CMD ["configurable-http-proxy"]

# The notebook: JupyterLab behind `jupyterhub-singleuser` (KubeSpawner's default command, port 8888), with the
# builder client (`from builder.client import build`, `nbp-build`). The home directory is the user's
# workspace volume, mounted over /home/jovyan by the hub.
FROM python AS notebook
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels notebook-platform jupyterlab jupyterhub \
 && rm -rf /tmp/wheels \
 && python -c 'import builder.client, jupyterlab, jupyterhub' \
 && useradd --create-home --uid 1000 --user-group jovyan
USER 1000:1000
WORKDIR /home/jovyan
ENV SHELL=/bin/bash
EXPOSE 8888
CMD ["jupyterhub-singleuser", "--ip=0.0.0.0", "--port=8888"]
