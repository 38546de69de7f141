#!/usr/bin/env python3
"""A real Proxmox client (proxmoxer) walks a scenario against `stand sim serve`.

Env: PVE_URL, PVE_TOKEN, PVE_FINGERPRINT (from `stand sim serve`), ROOT_PASSWORD, WORKDIR.
The server's certificate is fetched, checked against the pinned fingerprint, and then
trusted as the only CA: TLS is verified, never switched off.
"""
import hashlib
import os
import ssl
import sys
import time

from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

url = os.environ["PVE_URL"]
host = url.split("//", 1)[1]
hostname, port = host.rsplit(":", 1)
pem = ssl.get_server_certificate((hostname, int(port)))
der = ssl.PEM_cert_to_DER_cert(pem)
fingerprint = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
assert fingerprint == os.environ["PVE_FINGERPRINT"], "the served certificate is the pinned one"
cafile = os.path.join(os.environ["WORKDIR"], "sim-ca.pem")
with open(cafile, "w") as f:
    f.write(pem)

token_user, secret = os.environ["PVE_TOKEN"].rsplit("=", 1)
user, token_name = token_user.split("!")
tok = ProxmoxAPI(host, user=user, token_name=token_name, token_value=secret, verify_ssl=cafile)
pw = ProxmoxAPI(host, user="root@pam", password=os.environ["ROOT_PASSWORD"], verify_ssl=cafile)


def wait(api, upid):
    node = upid.split(":")[1]
    for _ in range(600):
        st = api.nodes(node).tasks(upid).status.get()
        if st["status"] == "stopped":
            assert st["exitstatus"] == "OK", st
            return st
        time.sleep(0.05)
    raise AssertionError("task did not end: " + upid)


def expect_error(status, fn):
    try:
        fn()
    except ResourceException as e:
        assert e.status_code == status, (e.status_code, e.status_message, e.content)
        return e
    raise AssertionError("expected HTTP %d" % status)


# list nodes, with a ticket and with a token
nodes = sorted(n["node"] for n in pw.nodes.get())
assert nodes == ["pve1", "pve2", "pve3"], nodes
assert sorted(n["node"] for n in tok.nodes.get()) == nodes
assert pw.version.get()["version"]

# clone a template to another node, wait for the task
newid = int(pw.cluster.nextid.get())
upid = pw.nodes("pve1").qemu(101).clone.post(newid=newid, name="peer-web", target="pve2")
assert upid.startswith("UPID:pve1:") and ":qmclone:101:root@pam:" in upid, upid
wait(pw, upid)
assert pw.nodes("pve2").qemu(newid).config.get()["name"] == "peer-web"

# a bridge, staged, then applied
tok.nodes("pve2").network.post(iface="vmbr1001", type="bridge", autostart=1, comments="peer scenario")
listed = {i["iface"]: i for i in tok.nodes("pve2").network.get()}
assert "vmbr1001" in listed and not listed["vmbr1001"].get("active"), listed.get("vmbr1001")
wait(tok, tok.nodes("pve2").network.put())
assert {i["iface"]: i for i in tok.nodes("pve2").network.get()}["vmbr1001"].get("active") == 1

# change the NICs
pw.nodes("pve2").qemu(newid).config.put(net0="virtio,bridge=vmbr0,firewall=1", net1="virtio,bridge=vmbr1001,firewall=1")
cfg = pw.nodes("pve2").qemu(newid).config.get()
assert "bridge=vmbr1001" in cfg["net1"] and cfg["net1"].startswith("virtio=BC:24:11:"), cfg["net1"]

# a user, a pool with the VM, an ACL
tok.access.users.post(userid="peer1@pve", password="Peer-pass-1", comment="peer scenario")
tok.pools.post(poolid="peer-pool", comment="peer scenario")
tok.pools("peer-pool").put(vms=str(newid))
tok.access.acl.put(path="/pool/peer-pool", roles="PVEVMAdmin", users="peer1@pve")

# the restricted user sees its VM only and gets 403 elsewhere
student = ProxmoxAPI(host, user="peer1@pve", password="Peer-pass-1", verify_ssl=cafile)
seen = [r["vmid"] for r in student.cluster.resources.get(type="vm")]
assert seen == [newid], seen
e = expect_error(403, lambda: student.nodes("pve1").qemu(101).clone.post(newid=newid + 1))
assert "Permission check failed" in str(e.status_message) + str(e.content), e

# a bad parameter is a 400 with per-parameter errors (a taken VMID: valid by schema, refused by PVE)
e = expect_error(400, lambda: tok.cluster.nextid.get(vmid=101))
assert "VM 101 already exists" in str(e.errors) + str(e.content), (e.errors, e.content)

# deploy-stand's template copy for another node: full clone, offline migrate, template
copy = newid + 10
wait(pw, pw.nodes("pve1").qemu(103).clone.post(newid=copy, name="debian-12-copy", full=1, storage="local-lvm"))
assert "current" in [s["subcmd"] for s in pw.nodes("pve1").qemu(copy).status.get()]
upid = tok.nodes("pve1").qemu(copy).migrate.post(target="pve3")
assert ":qmigrate:%d:" % copy in upid, upid
wait(tok, upid)
expect_error(500, lambda: pw.nodes("pve1").qemu(copy).status.get())
pw.nodes("pve3").qemu(copy).template.post()
assert pw.nodes("pve3").qemu(copy).config.get()["template"] == 1
task = [t for t in pw.nodes("pve1").tasks.get() if t["type"] == "qmigrate"][0]
assert task["user"] == "root@pam" and task["tokenid"] == token_name, task

# delete the VM
tok.pools("peer-pool").put(vms=str(newid), delete=1)
wait(tok, tok.nodes("pve2").qemu(newid).delete(purge=1))
expect_error(500, lambda: tok.nodes("pve2").qemu(newid).config.get())
print("proxmoxer scenario: OK")
