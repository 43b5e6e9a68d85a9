"""The spawn form: profiles (sizes, images, GPUs) and the namespace's PodDefaults as "configurations".

Everything here is pure except `render_options_form`, which does the one read the form needs (the
PodDefaults in the user's own namespace, never anyone else's). Field names follow KubeSpawner (`profile`,
`profile-option-<profile>--<option>`), so its `load_user_options` applies the profile exactly as documented;
chosen configurations travel in `user_options["configurations"]` and become pod labels at spawn time.

PodDefault names and descriptions are written by whoever may create PodDefaults in the namespace, so they
are hostile input: HTML-escaped, and `{`/`}` become entities in case a template engine renders the form.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub_config import constants as k
from hub_config.selectors import (
    SelectionConflict,
    labels_for_selection,
    name_of,
    requirements,
    selector_of,
)

__all__ = [
    "Configuration",
    "SelectionConflict",
    "configurations",
    "labels_for_selection",
    "options_from_form",
    "render_form",
]


@dataclass(frozen=True)
class Configuration:
    """One PodDefault as the form shows it."""

    name: str
    desc: str
    available: bool
    reason: str = ""           # why it is unavailable
    preselected: bool = False  # operator default: checked on first view
    always: bool = False       # empty selector: applies to every server in the namespace
    labels: Mapping[str, str] | None = None  # what choosing it adds to the pod


def configurations(
    poddefaults: Sequence[Mapping[str, Any]],
    preselected: Iterable[str] = (),
    base_labels: Mapping[str, str] | None = None,
) -> list[Configuration]:
    """Each PodDefault with whether it can be chosen at all, and why not; sorted by name."""
    pre = set(preselected)
    out: list[Configuration] = []
    for pd in sorted(poddefaults, key=name_of):
        name = name_of(pd)
        spec = pd.get("spec") or {}
        desc = str(spec.get("desc") or name)
        reqs = requirements(selector_of(pd), source=name)
        if isinstance(reqs, SelectionConflict):
            out.append(Configuration(name, desc, False, reason=reqs.reason))
            continue
        if not reqs:
            out.append(Configuration(name, desc, True, preselected=True, always=True, labels={}))
            continue
        labels = labels_for_selection([pd], [name], base_labels)
        if isinstance(labels, SelectionConflict):
            out.append(Configuration(name, desc, False, reason=labels.reason))
        else:
            out.append(Configuration(name, desc, True, preselected=name in pre, labels=labels))
    return out


def esc(text: object) -> str:
    """HTML-escape, and neutralise template delimiters, for text from PodDefaults or settings."""
    return html.escape(str(text), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _checked(flag: bool) -> str:
    return " checked" if flag else ""


def _profile_html(profile: Mapping[str, Any], selected: bool, user_options: Mapping[str, Any]) -> str:
    slug = str(profile["slug"])
    parts = [
        '<div class="form-check nbp-profile">',
        f'<input class="form-check-input" type="radio" name="{k.FORM_PROFILE}" id="nbp-profile-{esc(slug)}" '
        f'value="{esc(slug)}"{_checked(selected)}>',
        f'<label class="form-check-label" for="nbp-profile-{esc(slug)}"><strong>'
        f'{esc(profile.get("display_name", slug))}</strong>',
    ]
    if profile.get("description"):
        parts.append(f' <span class="text-muted">{esc(profile["description"])}</span>')
    parts.append("</label>")
    for opt_name, option in (profile.get("profile_options") or {}).items():
        field = f"{k.FORM_PROFILE_OPTION_PREFIX}{slug}--{opt_name}"
        chosen = user_options.get(opt_name) if selected else None
        parts.append(f'<label class="nbp-profile-option">{esc(option.get("display_name", opt_name))} '
                     f'<select class="form-select" name="{esc(field)}">')
        for choice, spec in (option.get("choices") or {}).items():
            sel = choice == chosen if chosen else bool(spec.get("default"))
            parts.append(f'<option value="{esc(choice)}"{" selected" if sel else ""}>'
                         f'{esc(spec.get("display_name", choice))}</option>')
        parts.append("</select></label>")
    parts.append("</div>")
    return "".join(parts)


def _configuration_html(c: Configuration, checked: bool) -> str:
    ident = f"nbp-cfg-{esc(c.name)}"
    if c.always:
        box = f'<input class="form-check-input" type="checkbox" id="{ident}" checked disabled>'
        note = '<small class="text-muted"> (applies to every server in your namespace)</small>'
    elif not c.available:
        box = f'<input class="form-check-input" type="checkbox" id="{ident}" disabled>'
        note = f'<small class="text-danger nbp-unavailable"> unavailable: {esc(c.reason)}</small>'
    else:
        box = (f'<input class="form-check-input" type="checkbox" name="{k.FORM_CONFIGURATION}" id="{ident}" '
               f'value="{esc(c.name)}"{_checked(checked)}>')
        note = ""
    return (f'<div class="form-check nbp-configuration">{box}'
            f'<label class="form-check-label" for="{ident}"><strong>{esc(c.name)}</strong> '
            f'<span class="nbp-desc">{esc(c.desc)}</span></label>{note}</div>')


_PREVIEW_JS = """
<script>
(function () {
  var button = document.getElementById("nbp-preview");
  if (!button) { return; }
  button.addEventListener("click", function () {
    var form = button.closest("form");
    var out = document.getElementById("nbp-preview-out");
    var data = new FormData(form);
    var xsrf = new URL(form.action, document.baseURI).searchParams.get("_xsrf");
    out.textContent = "Asking the cluster...";
    fetch(button.dataset.url, {method: "POST", body: data, credentials: "same-origin",
                               headers: xsrf ? {"X-XSRFToken": xsrf} : {}})
      .then(function (r) { return r.json(); })
      .then(function (j) { out.textContent = JSON.stringify(j, null, 2); })
      .catch(function (e) { out.textContent = "Preview failed: " + e; });
  });
})();
</script>
"""


def render_form(
    profiles: Sequence[Mapping[str, Any]],
    configs: Sequence[Configuration],
    user_options: Mapping[str, Any] | None = None,
    preview_url: str | None = None,
) -> str:
    """The HTML inside JupyterHub's spawn `<form>`; previous choices (user_options) are pre-filled."""
    opts = user_options or {}
    parts = ['<div class="nbp-spawn-form">']
    if profiles:
        wanted = opts.get("profile")
        slugs = [str(p["slug"]) for p in profiles]
        current = wanted if wanted in slugs else next(
            (str(p["slug"]) for p in profiles if p.get("default")), slugs[0])
        parts.append('<fieldset class="nbp-profiles"><legend>Server size and image</legend>')
        parts.extend(_profile_html(p, str(p["slug"]) == current, opts) for p in profiles)
        parts.append("</fieldset>")
    parts.append('<fieldset class="nbp-configurations"><legend>Configurations</legend>')
    if not configs:
        parts.append('<p class="text-muted">No configurations (PodDefaults) in your namespace.</p>')
    previous = opts.get(k.USER_OPTION_CONFIGURATIONS)
    for c in configs:
        checked = c.name in previous if isinstance(previous, list) else c.preselected
        parts.append(_configuration_html(c, checked))
    parts.append("</fieldset>")
    if preview_url:
        parts.append(f'<button type="button" class="btn btn-secondary" id="nbp-preview" '
                     f'data-url="{esc(preview_url)}">Show what these choices inject</button>'
                     '<pre id="nbp-preview-out" class="nbp-preview"></pre>')
        parts.append(_PREVIEW_JS)
    parts.append("</div>")
    return "\n".join(parts)


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Form data -> user_options: KubeSpawner's `profile` keys, plus the chosen configurations.

    Unknown fields are dropped; configuration names are checked against the namespace at spawn time.
    """
    options: dict[str, Any] = {}
    profile = (formdata.get(k.FORM_PROFILE) or [""])[0]
    if profile:
        options["profile"] = profile
        prefix = f"{k.FORM_PROFILE_OPTION_PREFIX}{profile}--"
        for key, values in formdata.items():
            if key.startswith(prefix) and values:
                options[key[len(prefix):]] = values[0]
    chosen = [v for v in formdata.get(k.FORM_CONFIGURATION, []) if v]
    options[k.USER_OPTION_CONFIGURATIONS] = list(dict.fromkeys(chosen))
    return options


def initialized_profiles(profiles: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """KubeSpawner's profile_list defaults, applied to a copy: slugs from display names, one default."""
    from slugify import slugify  # what KubeSpawner uses, so slugs agree with its load_user_options

    out = [dict(p) for p in profiles]
    for p in out:
        p.setdefault("slug", slugify(str(p.get("display_name", ""))))
    if out and not any(p.get("default") for p in out):
        out[0]["default"] = True
    return out


def merge_planned(listed: Sequence[Mapping[str, Any]], planned: Sequence[Mapping[str, Any]]
                  ) -> list[Mapping[str, Any]]:
    """The namespace's PodDefaults plus the default ones not created yet (a first-time user sees them too)."""
    names = {name_of(pd) for pd in listed}
    return [*listed, *(pd for pd in planned if name_of(pd) not in names)]


async def render_options_form(spawner: Any, settings: Any, preview_url: str | None = None) -> str:
    """`c.KubeSpawner.options_form`: one read of the user's namespace, then pure rendering."""
    from jupyterhub.utils import maybe_future

    from hub_config import kube
    from hub_config.namespaces import default_poddefaults, poddefault_manifest

    profiles = spawner.profile_list
    if callable(profiles):
        profiles = await maybe_future(profiles(spawner))
    if isinstance(profiles, dict):  # KubeSpawner also accepts {key: profile}, ordered by key
        profiles = [profiles[key] for key in sorted(profiles)]
    listed = await kube.list_poddefaults(spawner.api.api_client, spawner.namespace)
    planned = [poddefault_manifest(spawner.namespace, pd) for pd in default_poddefaults(settings)]
    preselected = [*settings.preselected_configurations,
                   *(pd.name for pd in default_poddefaults(settings) if pd.preselected)]
    base = {"component": spawner.component_label, k.COMPONENT_KEY: spawner.component_label,
            **spawner.common_labels, **spawner.extra_labels}
    configs = configurations(merge_planned(listed, planned), preselected, base)
    return render_form(initialized_profiles(profiles or []), configs, spawner.user_options or {}, preview_url)
