#!/usr/bin/env python3
"""Validates Kubernetes manifests without a cluster.

    python3 tests/k8s/validate.py --crds DIR [--kubernetes-version 1.32.0] FILE...

FILE is multi-document YAML (e.g. the output of `kubectl kustomize k8s/overlays/prod`), `-` for
standard input. Every document (and every item of a `kind: *List`) is validated:

* built-in kinds (Deployment, Service, HorizontalPodAutoscaler autoscaling/v2, ...) with the
  `kubernetes-validate` package, which bundles the Kubernetes JSON schemas, in strict mode (a field
  the schema does not know is an error), for the --kubernetes-version given;
* custom resources against the openAPIV3Schema of the matching version of their CRD, found in the
  CustomResourceDefinitions under DIR (scripts/k8s/fetch-crds.sh fetches them). The schema is used
  the way the API server uses it for a create with strict field validation (kubectl's default):
  - a field the schema does not declare is an error, unless the object is
    x-kubernetes-preserve-unknown-fields (or declares additionalProperties);
  - x-kubernetes-int-or-string, nullable, x-kubernetes-embedded-resource are honoured; a null in a
    field that is not nullable is dropped (pruned) as the server does; defaults are applied;
  - x-kubernetes-list-type map/set entries must be unique (by their x-kubernetes-list-map-keys);
  - the x-kubernetes-validations CEL rules are evaluated with cel-python (plus the Kubernetes CEL
    functions the rules use: isIP, split, substring, ...); transition rules (oldSelf) do not apply
    to a create and are skipped; a rule using a function not implemented here is reported, not
    guessed;
  - metadata is validated against the Kubernetes ObjectMeta schema (strict);
  - the CRD must serve the document's apiVersion.
* for every object, some checks the API server makes beyond its schemas: metadata.name is set and
  is a valid name for its kind, metadata.namespace is a DNS label, label and annotation keys and
  label values are well formed, a workload's selector matches its pod template's labels.

A document whose kind has no schema at all (neither built-in nor a CRD in DIR) is an error.

Prints one line per object, `ok Kind/name` or `FAIL Kind/name: reason`, then
`k8s-validate: N passed, N failed`; exits 1 when anything failed, 2 on a usage error.
When the packages are missing and <repo>/.cache/k8s/venv exists (tests/k8s/setup.sh makes it),
the script re-runs itself with that venv's python.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
_VENV_PY = os.path.join(_REPO, ".cache", "k8s", "venv", "bin", "python")

try:
    import jsonschema
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
    import yaml
    from referencing import Registry, Resource
except ImportError as _e:  # not in the venv: re-run with it
    if os.path.exists(_VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.dirname(os.path.dirname(_VENV_PY))) \
            and not os.environ.get("K8S_VALIDATE_REEXEC"):
        os.environ["K8S_VALIDATE_REEXEC"] = "1"
        os.execv(_VENV_PY, [_VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("validate.py: %s; run tests/k8s/setup.sh first (it makes %s)\n" % (_e, _VENV_PY))
    sys.exit(2)

try:  # CEL rules; without cel-python they are reported as not evaluated
    import celpy
    import celpy.celtypes as celtypes
except ImportError:  # pragma: no cover
    celpy = None

import argparse
import base64
import copy
import functools
import glob
import ipaddress
import json
import re
import signal

from packaging.version import Version


# --------------------------------------------------------------------------------------------
# YAML: as kubectl reads it (timestamps stay strings, keys are strings), duplicate keys noted

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):   # libyaml when PyYAML has it
    pass


def _construct_str_scalar(loader, node):
    return loader.construct_scalar(node)


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            key = json.dumps(key) if isinstance(key, bool) or key is None else str(key)
        if key in out:
            loader.duplicates.append("duplicate key %r (line %d)" % (key, key_node.start_mark.line + 1))
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str_scalar)
_Loader.add_constructor("tag:yaml.org,2002:value", _construct_str_scalar)   # a bare '='
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text):
    """Yields (document, [duplicate-key notes]) for each non-empty document of text."""
    loader = _Loader(text)
    loader.duplicates = []
    try:
        while loader.check_data():
            doc = loader.get_data()
            dups, loader.duplicates = loader.duplicates, []
            if doc is not None:
                yield doc, dups
    finally:
        loader.dispose()


# --------------------------------------------------------------------------------------------
# Small helpers

class UsageError(Exception):
    """Bad arguments or setup (no CRDs, an unsupported Kubernetes version): exit 2."""

def fmt_path(path):
    out = ""
    for p in path:
        if isinstance(p, int):
            out += "[%d]" % p
        else:
            out += ("." if out else "") + str(p)
    return out


def describe_error(err, prefix=()):
    """One line for a jsonschema error; unknown fields are named as kubectl names them."""
    path = list(prefix) + list(err.absolute_path)
    if err.validator == "additionalProperties" and err.validator_value is False \
            and isinstance(err.instance, dict):
        known = set((err.schema.get("properties") or {}).keys())
        patterns = list((err.schema.get("patternProperties") or {}).keys())
        extra = [k for k in err.instance if k not in known and not any(re.search(p, k) for p in patterns)]
        if extra:
            return "; ".join('unknown field "%s"' % fmt_path(path + [k]) for k in sorted(extra))
    msg = err.message
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return "%s: %s" % (fmt_path(path) or "(root)", msg)


def split_api_version(api_version):
    if "/" in api_version:
        group, version = api_version.split("/", 1)
    else:
        group, version = "", api_version
    return group, version


# --------------------------------------------------------------------------------------------
# Built-in kinds: kubernetes-validate (its schemas, strict)

class Builtin:
    def __init__(self, kube_version):
        v = kube_version[1:] if kube_version.startswith("v") else kube_version
        versions = kv_utils.all_versions()
        wanted = Version(".".join(v.split(".")[:2]))
        usable = [x for x in versions if Version(".".join(x.split(".")[:2])) <= wanted]
        if not usable or wanted > Version(".".join(versions[-1].split(".")[:2])):
            raise UsageError("kubernetes-validate %s has schemas for Kubernetes %s .. %s, not %s"
                             % (kubernetes_validate.__version__, versions[0], versions[-1], kube_version))
        self.version = usable[-1]          # e.g. 1.32.0: the schemas the package has for that minor
        self.dir = "kubernetes-json-schema/v%s-local-strict" % self.version
        defs = self._contents("_definitions.json")
        self.registry = Resource.from_contents(defs) @ Registry()
        self.defs_id = defs["$id"]
        self._validators = {}

    @functools.lru_cache(maxsize=None)
    def _contents(self, name):
        return kv_utils.schema_contents("%s/%s" % (self.dir, name), self.version)

    def schema_for(self, doc):
        """The strict schema of doc's kind, or None when kubernetes-validate has none."""
        if not re.match(r"^[A-Za-z0-9]+$", doc["kind"]):
            return None
        group, version = split_api_version(doc.get("apiVersion", ""))
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
        try:
            schema = self._contents("%s-%s.json" % (doc["kind"].lower(), api))
        except (FileNotFoundError, kv_utils.InvalidSchemaError):
            return None
        # the file name drops the group's domain: make sure it is this exact group/version/kind
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if not any(g.get("group", "") == group and g.get("version") == version and g.get("kind") == doc["kind"]
                   for g in gvks):
            return None
        return schema

    def validate(self, doc):
        """Errors (strings) of doc against its built-in schema: the verdict is the package's
        validate(); when it fails, all the errors are listed (it raises only the first)."""
        try:
            kubernetes_validate.validate(doc, self.version, strict=True)
        except kubernetes_validate.ValidationError as e:
            v = jsonschema.Draft202012Validator(self.schema_for(doc), registry=self.registry)
            errs = sorted(v.iter_errors(doc), key=lambda x: [str(p) for p in x.absolute_path])
            return [describe_error(x) for x in errs] or [describe_error(e)]
        return []

    def validate_metadata(self, metadata):
        v = self._validators.get("ObjectMeta")
        if v is None:
            ref = self.defs_id + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
            v = jsonschema.Draft202012Validator({"$ref": ref}, registry=self.registry)
            self._validators["ObjectMeta"] = v
        return [describe_error(e, ["metadata"]) for e in sorted(v.iter_errors(metadata), key=lambda e: list(map(str, e.absolute_path)))]


# speed: kubernetes-validate reads the (large) schema files again for every document
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)


# --------------------------------------------------------------------------------------------
# Custom resources: CRD openAPIV3Schema, as the API server applies it

def to_jsonschema(s, structural=True):
    """An openAPIV3Schema node (OpenAPI 3.0 subset + x-kubernetes-*) as a draft-4 JSON schema in
    which objects reject undeclared fields (unless they preserve unknown fields)."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("properties", "patternProperties"):
            out[k] = {pk: to_jsonschema(pv, structural) for pk, pv in v.items()}
        elif k == "items":
            out[k] = [to_jsonschema(i, structural) for i in v] if isinstance(v, list) else to_jsonschema(v, structural)
        elif k == "additionalProperties":
            out[k] = to_jsonschema(v, structural) if isinstance(v, dict) else v
        elif k in ("anyOf", "oneOf", "allOf"):
            out[k] = [to_jsonschema(i, False) for i in v]   # value validations: never declare fields
        elif k == "not":
            out[k] = to_jsonschema(v, False)
        elif k in ("default", "example", "description", "externalDocs", "nullable") or k.startswith("x-kubernetes-"):
            continue
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string") and "type" not in s and "anyOf" not in s:
        out["type"] = ["integer", "string"]
    if s.get("nullable"):
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    if structural and s.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if structural and (s.get("type") == "object" or "properties" in s) \
            and not s.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in s:
        out["additionalProperties"] = False
    return out


def _is_valid_base64(instance):
    if not isinstance(instance, str):
        return True
    try:
        base64.b64decode(instance, validate=True)
        return True
    except ValueError:
        return False


_FORMATS = jsonschema.FormatChecker(formats=["ipv4", "ipv6"])
_FORMATS.checks("byte")(_is_valid_base64)


class Crd:
    """One served version of a CRD."""

    def __init__(self, crd, version, source):
        self.source = source
        self.name = crd["metadata"]["name"]
        self.kind = crd["spec"]["names"]["kind"]
        self.group = crd["spec"]["group"]
        self.version = version
        self.schema = copy.deepcopy(version.get("schema", {}).get("openAPIV3Schema") or {})
        root = copy.deepcopy(self.schema)
        props = root.setdefault("properties", {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}  # ObjectMeta: apart
        self.validator = jsonschema.Draft4Validator(to_jsonschema(root), format_checker=_FORMATS)


class CrdIndex:
    def __init__(self, dirs):
        self.by_gk = {}        # (group, kind) -> {"versions": {name: version}, "crd": crd, "source": file}
        self.files = 0
        for d in dirs:
            if not os.path.isdir(d):
                raise UsageError("--crds %s: not a directory (run scripts/k8s/fetch-crds.sh)" % d)
            paths = sorted(p for ext in ("yaml", "yml", "json")
                           for p in glob.glob(os.path.join(d, "**", "*." + ext), recursive=True))
            for path in paths:
                with open(path) as f:
                    text = f.read()
                for doc, _ in load_documents(text):
                    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition" \
                            and doc.get("apiVersion") == "apiextensions.k8s.io/v1":
                        self._add(doc, path)
                self.files += 1
        if not self.by_gk:
            raise UsageError("no apiextensions.k8s.io/v1 CustomResourceDefinition under %s"
                             % ", ".join(dirs))
        self._compiled = {}

    def _add(self, crd, path):
        key = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        versions = {v["name"]: v for v in crd["spec"].get("versions", [])}
        old = self.by_gk.get(key)
        if old and old["crd"]["spec"] != crd["spec"]:
            raise UsageError("two different CRDs for %s.%s: %s and %s"
                             % (key[1], key[0], old["source"], path))
        self.by_gk[key] = {"versions": versions, "crd": crd, "source": path}

    def lookup(self, group, version, kind):
        """(Crd or None, error or None, warning or None) for a document's group/version/kind."""
        entry = self.by_gk.get((group, kind))
        if entry is None:
            return None, None, None
        v = entry["versions"].get(version)
        served = sorted(n for n, x in entry["versions"].items() if x.get("served"))
        if v is None or not v.get("served"):
            return None, "apiVersion %s/%s is not served by CRD %s (served: %s)" % (
                group, version, entry["crd"]["metadata"]["name"], ", ".join(served) or "none"), None
        key = (group, version, kind)
        if key not in self._compiled:
            self._compiled[key] = Crd(entry["crd"], v, entry["source"])
        warning = None
        if v.get("deprecated"):
            warning = v.get("deprecationWarning") or "%s/%s %s is deprecated" % (group, version, kind)
        return self._compiled[key], None, warning


# ---- CEL ---------------------------------------------------------------------------------------

def _cel_bool(b):
    return celtypes.BoolType(bool(b))


def _cel_is_ip(s, *rest):
    try:
        ipaddress.ip_address(str(s))
        return _cel_bool("%" not in str(s))   # Kubernetes rejects zones
    except ValueError:
        return _cel_bool(False)


def _cel_is_cidr(s):
    try:
        ipaddress.ip_network(str(s), strict=False)
        return _cel_bool("/" in str(s))
    except ValueError:
        return _cel_bool(False)


def _cel_split(s, sep, n=None):
    s, sep = str(s), str(sep)
    if n is None:
        parts = s.split(sep)
    elif int(n) == 0:
        parts = []
    elif int(n) < 0:
        parts = s.split(sep)
    else:
        parts = s.split(sep, int(n) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _cel_substring(s, start, end=None):
    s = str(s)
    if end is None:
        return celtypes.StringType(s[int(start):])
    return celtypes.StringType(s[int(start):int(end)])


def _cel_index_of(s, sub, start=0):
    return celtypes.IntType(str(s).find(str(sub), int(start)))


def _cel_last_index_of(s, sub):
    return celtypes.IntType(str(s).rfind(str(sub)))


def _cel_trim(s):
    return celtypes.StringType(str(s).strip())


def _cel_lower(s):
    return celtypes.StringType(str(s).lower())


def _cel_upper(s):
    return celtypes.StringType(str(s).upper())


def _cel_replace(s, old, new, n=-1):
    return celtypes.StringType(str(s).replace(str(old), str(new), int(n)))


def _cel_join(lst, sep=""):
    return celtypes.StringType(str(sep).join(str(x) for x in lst))


def _cel_char_at(s, i):
    s, i = str(s), int(i)
    return celtypes.StringType(s[i] if i < len(s) else "")


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]*[^\s]*$|^/[^\s]*$")


def _cel_is_url(s):
    return _cel_bool(_URL_RE.match(str(s)) is not None)


_CEL_FUNCTIONS = {
    "isIP": _cel_is_ip, "isCIDR": _cel_is_cidr, "isURL": _cel_is_url,
    "split": _cel_split, "substring": _cel_substring, "indexOf": _cel_index_of,
    "lastIndexOf": _cel_last_index_of, "trim": _cel_trim, "lowerAscii": _cel_lower,
    "upperAscii": _cel_upper, "replace": _cel_replace, "join": _cel_join, "charAt": _cel_char_at,
}
# functions and macros cel-python has itself
_CEL_BUILTIN = {
    "has", "size", "all", "exists", "exists_one", "filter", "map", "matches", "contains",
    "startsWith", "endsWith", "duration", "timestamp", "int", "uint", "double", "string", "bytes",
    "bool", "type", "dyn", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getFullYear", "getMonth", "getHours", "getMilliseconds", "getMinutes", "getSeconds",
}
_CEL_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_CEL_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


class Cel:
    def __init__(self):
        self._env = None
        self.programs = {}

    @property
    def env(self):
        if self._env is None and celpy is not None:
            self._env = celpy.Environment()         # builds the CEL grammar: only when a rule is met
        return self._env

    def unsupported(self, rule):
        names = set(_CEL_CALL.findall(_CEL_STRING.sub("''", rule)))
        return sorted(n for n in names if n not in _CEL_BUILTIN and n not in _CEL_FUNCTIONS)

    def evaluate(self, rule, value):
        """(True, None) when the rule holds, (False, reason) when not, (None, why) when it
        cannot be evaluated here."""
        if self.env is None:
            return None, "cel-python is not installed"
        missing = self.unsupported(rule)
        if missing:
            return None, "uses %s" % ", ".join(missing)
        prog = self.programs.get(rule)
        if prog is None:
            try:
                prog = self.env.program(self.env.compile(rule), functions=_CEL_FUNCTIONS)
            except Exception as e:  # a CEL dialect cel-python does not parse
                return None, "does not compile here: %s" % str(e).splitlines()[0][:120]
            self.programs[rule] = prog
        try:
            result = prog.evaluate({"self": celpy.json_to_cel(value)})
        except Exception as e:
            return False, "evaluation error: %s" % _short_cel_error(e)
        if isinstance(result, Exception):
            return False, "evaluation error: %s" % _short_cel_error(result)
        return bool(result), None


def _short_cel_error(e):
    text = str(e.args[0]) if getattr(e, "args", None) else str(e)
    return text.split(" (in activation")[0][:160]


# ---- the walk: prune nulls, apply defaults, list-type uniqueness, CEL --------------------------

def walk(value, s, path, errs, notes, cel, root=False):
    if not isinstance(s, dict):
        return
    if isinstance(value, dict):
        props = s.get("properties") or {}
        for k in list(value):
            if value[k] is None and k in props and not props[k].get("nullable"):
                del value[k]                        # the API server prunes such nulls
        for k, ps in props.items():
            if k not in value and "default" in ps:
                value[k] = copy.deepcopy(ps["default"])
        addl = s.get("additionalProperties")
        for k in list(value):
            if root and k == "metadata":
                continue
            if k in props:
                walk(value[k], props[k], path + [k], errs, notes, cel)
            elif isinstance(addl, dict):
                if value[k] is None and not addl.get("nullable"):
                    del value[k]
                    continue
                walk(value[k], addl, path + [k], errs, notes, cel)
    elif isinstance(value, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                walk(v, items, path + [i], errs, notes, cel)
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            seen = set()
            for i, v in enumerate(value):
                key = json.dumps(v, sort_keys=True)
                if key in seen:
                    errs.append("%s: duplicate entry %s (list-type set)" % (fmt_path(path + [i]), key))
                seen.add(key)
        elif list_type == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            item_props = (items or {}).get("properties") or {}
            seen = set()
            for i, v in enumerate(value):
                if not isinstance(v, dict):
                    continue
                key = tuple(json.dumps(v.get(k, (item_props.get(k) or {}).get("default"))) for k in keys)
                if key in seen:
                    errs.append("%s: duplicate entry with %s (list-type map)" % (
                        fmt_path(path + [i]), ", ".join("%s=%s" % kv for kv in zip(keys, key))))
                seen.add(key)
    for rule in s.get("x-kubernetes-validations") or []:
        expr = rule.get("rule", "")
        if "oldSelf" in expr:
            continue                                 # transition rule: not on a create
        ok, why = cel.evaluate(expr, value)
        where = fmt_path(path + ([rule["fieldPath"].lstrip(".")] if rule.get("fieldPath") else [])) or "(root)"
        if ok is None:
            notes.append("%s: CEL rule not evaluated (%s)" % (where, why))
        elif not ok:
            msg = rule.get("message") or ("failed rule: %s" % " ".join(expr.split()))
            errs.append("%s: %s%s" % (where, msg, (" (%s)" % why) if why else ""))


# --------------------------------------------------------------------------------------------
# Checks the API server makes beyond the schemas

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PATH_SEGMENT_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
WORKLOAD_KINDS = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet")}


def check_name(kind, name):
    if kind == "Service":
        ok, what = len(name) <= 63 and DNS1035_LABEL.match(name), "an RFC 1035 label"
    elif kind == "Namespace":
        ok, what = len(name) <= 63 and DNS1123_LABEL.match(name), "an RFC 1123 label"
    elif kind in PATH_SEGMENT_KINDS:
        ok, what = name not in (".", "..") and "/" not in name and "%" not in name, "a path segment"
    else:
        ok, what = len(name) <= 253 and DNS1123_SUBDOMAIN.match(name), "an RFC 1123 subdomain"
    return [] if ok else ['metadata.name: "%s" is not %s' % (name, what)]


def check_qualified_key(key, field):
    prefix, _, name = key.rpartition("/")
    errs = []
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errs.append('%s: key "%s": prefix must be an RFC 1123 subdomain' % (field, key))
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errs.append('%s: key "%s" is not a qualified name' % (field, key))
    return errs


def selector_matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def apiserver_checks(doc, group):
    errs = []
    kind = doc.get("kind")
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        errs.append("metadata.name: required")
    elif isinstance(name, str):
        errs += check_name(kind, name)
    ns = meta.get("namespace")
    if isinstance(ns, str) and (len(ns) > 63 or not DNS1123_LABEL.match(ns)):
        errs.append('metadata.namespace: "%s" is not an RFC 1123 label' % ns)
    for k, v in (meta.get("labels") or {}).items():
        errs += check_qualified_key(k, "metadata.labels")
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            errs.append('metadata.labels: value %r of "%s" is not a valid label value' % (v, k))
    for k in (meta.get("annotations") or {}):
        errs += check_qualified_key(k, "metadata.annotations")
    if (group, kind) in WORKLOAD_KINDS:
        spec = doc.get("spec") or {}
        sel = spec.get("selector")
        labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
        if isinstance(sel, dict):
            if not sel.get("matchLabels") and not sel.get("matchExpressions"):
                errs.append("spec.selector: empty selector is invalid for %s" % kind)
            elif not selector_matches(sel, labels):
                errs.append("spec.template.metadata.labels: `selector` does not match template `labels`")
        names = [c.get("name") for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
                 if isinstance(c, dict)]
        names += [c.get("name") for c in ((spec.get("template") or {}).get("spec") or {}).get("initContainers") or []
                  if isinstance(c, dict)]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            errs.append("spec.template.spec: duplicate container names: %s" % ", ".join(map(str, dups)))
    return errs


# --------------------------------------------------------------------------------------------

class Validator:
    def __init__(self, crd_dirs, kube_version):
        self.builtin = Builtin(kube_version)
        self.crds = CrdIndex(crd_dirs)
        self.cel = Cel()

    def validate(self, doc):
        """(errors, notes) for one object."""
        if not isinstance(doc, dict):
            return ["not a mapping"], []
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not api_version:
            return ["apiVersion: required"], []
        if not isinstance(kind, str) or not kind:
            return ["kind: required"], []
        if not isinstance(doc.get("metadata"), dict):
            return ["metadata: required (an object)"], []
        group, version = split_api_version(api_version)
        errs, notes = [], []
        crd, crd_err, warning = self.crds.lookup(group, version, kind)
        if crd_err:
            return [crd_err], []
        if warning:
            notes.append(warning)
        if crd is not None:
            errs += self.builtin.validate_metadata(doc["metadata"])
            obj = copy.deepcopy(doc)
            walk_errs = []
            walk(obj, crd.schema, [], walk_errs, notes, self.cel, root=True)
            schema_errs = sorted(crd.validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
            errs += [describe_error(e) for e in schema_errs]
            # CEL results on a value the schema already rejects are noise: then only duplicates
            errs += [e for e in walk_errs if "duplicate entry" in e] if schema_errs else walk_errs
        elif self.builtin.schema_for(doc) is not None:
            errs += self.builtin.validate(doc)
        else:
            return ["no schema for %s %s: not a built-in kind of Kubernetes %s and no CRD for it in --crds"
                    % (api_version, kind, self.builtin.version)], []
        errs += apiserver_checks(doc, group)
        return errs, notes


def expand(doc):
    """A `kind: *List` (v1) stands for its items."""
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"].endswith("List") \
            and doc.get("apiVersion") == "v1" and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from expand(item)
    else:
        yield doc


def object_name(doc):
    if not isinstance(doc, dict):
        return "?/?"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return "%s/%s" % (doc.get("kind") or "?", meta.get("name") or meta.get("generateName") or "?")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crds", action="append", required=True, metavar="DIR",
                    help="folder with CustomResourceDefinition YAML (searched recursively); repeatable")
    ap.add_argument("--kubernetes-version", default="1.32.0",
                    help="the Kubernetes version whose built-in schemas to use (default 1.32.0)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print the notes of passing objects (CEL rules not evaluated, deprecations)")
    ap.add_argument("files", nargs="+", metavar="FILE", help="multi-document YAML, - for standard input")
    args = ap.parse_args(argv)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `| head` ends us quietly

    try:
        validator = Validator(args.crds, args.kubernetes_version)
    except UsageError as e:
        sys.stderr.write("validate.py: %s\n" % e)
        return 2
    passed = failed = 0
    for fname in args.files:
        try:
            text = sys.stdin.read() if fname == "-" else open(fname).read()
        except OSError as e:
            print("FAIL %s: cannot read: %s" % (fname, e))
            failed += 1
            continue
        count = 0
        try:
            for doc, dups in load_documents(text):
                for obj in expand(doc):
                    count += 1
                    errs, notes = validator.validate(obj)
                    errs = list(dups) + errs
                    name = object_name(obj)
                    if errs:
                        failed += 1
                        shown = errs[:6] + (["... %d more" % (len(errs) - 6)] if len(errs) > 6 else [])
                        print("FAIL %s: %s" % (name, "; ".join(shown)))
                    else:
                        passed += 1
                        notes = sorted(set(notes))
                        print("ok %s%s" % (name, (" (%d note%s%s)" % (
                            len(notes), "s" if len(notes) > 1 else "",
                            ": " + "; ".join(notes) if args.verbose else ", -v shows them")) if notes else ""))
        except yaml.YAMLError as e:
            print("FAIL %s: not valid YAML: %s" % (fname, " ".join(str(e).split())))
            failed += 1
            continue
        if count == 0:
            print("FAIL %s: no Kubernetes objects in it" % fname)
            failed += 1
    print("k8s-validate: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
