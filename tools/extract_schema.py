#!/usr/bin/env python3
"""Extract the parameter schema of the endpoints the simulator serves.

Usage: tools/extract_schema.py PVE_API_SCHEMA.json > src/sim/schema.json
The source is the official Proxmox VE API schema (pve-docs api-viewer/apidata.js,
AGPL-3.0-or-later, Proxmox Server Solutions GmbH); only parameter specs are kept.
"""
import json
import sys

PATHS = [
    "/access/ticket", "/access/permissions", "/access/users", "/access/users/{userid}",
    "/access/users/{userid}/token/{tokenid}", "/access/password", "/access/acl", "/access/roles",
    "/access/groups", "/access/groups/{groupid}", "/access/roles/{roleid}", "/access/domains",
    "/pools", "/pools/{poolid}", "/version", "/cluster/status", "/cluster/resources", "/cluster/nextid",
    "/nodes", "/nodes/{node}/status", "/storage", "/nodes/{node}/storage",
    "/nodes/{node}/qemu", "/nodes/{node}/qemu/{vmid}", "/nodes/{node}/qemu/{vmid}/config",
    "/nodes/{node}/qemu/{vmid}/clone", "/nodes/{node}/qemu/{vmid}/template",
    "/nodes/{node}/qemu/{vmid}/status", "/nodes/{node}/qemu/{vmid}/status/current",
    "/nodes/{node}/qemu/{vmid}/status/reboot", "/nodes/{node}/qemu/{vmid}/migrate", "/nodes/{node}/qemu/{vmid}/status/start",
    "/nodes/{node}/qemu/{vmid}/status/stop", "/nodes/{node}/qemu/{vmid}/status/shutdown",
    "/nodes/{node}/qemu/{vmid}/snapshot", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
    "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
    "/nodes/{node}/network", "/nodes/{node}/network/{iface}",
    "/nodes/{node}/tasks", "/nodes/{node}/tasks/{upid}", "/nodes/{node}/tasks/{upid}/status",
    "/nodes/{node}/tasks/{upid}/log",
    "/nodes/{node}/qemu/{vmid}/agent/ping", "/nodes/{node}/qemu/{vmid}/agent/get-host-name",
    "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces", "/nodes/{node}/qemu/{vmid}/agent/exec",
    "/nodes/{node}/qemu/{vmid}/agent/exec-status", "/nodes/{node}/qemu/{vmid}/agent/file-read",
    "/nodes/{node}/qemu/{vmid}/agent/file-write",
    "/cluster/sdn", "/cluster/sdn/zones", "/cluster/sdn/zones/{zone}", "/cluster/sdn/vnets",
    "/cluster/sdn/vnets/{vnet}", "/cluster/sdn/vnets/{vnet}/subnets",
    "/cluster/sdn/vnets/{vnet}/subnets/{subnet}", "/nodes/{node}/qemu/{vmid}/resize",
]

KEEP = {"type", "optional", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "requires", "default_key", "alias"}


def slim(spec):
    out = {}
    for k, v in spec.items():
        if k not in KEEP:
            continue
        if k == "format" and isinstance(v, dict):
            v = {fk: slim(fv) if isinstance(fv, dict) else fv for fk, fv in v.items()}
        out[k] = v
    return out


def main():
    schema = json.load(open(sys.argv[1]))["paths"]
    out = {}
    for path in PATHS:
        methods = schema[path]
        out[path] = {}
        for method, info in methods.items():
            params = {k: slim(v) for k, v in (info.get("parameters") or {}).items()}
            out[path][method] = {"allowtoken": info.get("allowtoken", True), "parameters": params}
    json.dump({"_source": "Proxmox VE API schema (pve-docs api-viewer/apidata.js, AGPL-3.0-or-later), parameters only", "paths": out}, sys.stdout, sort_keys=True, separators=(",", ":"))


main()
