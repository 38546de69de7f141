#!/usr/bin/env python3
"""labomatics, a student-lab tool for Proxmox VE, runs its main flow against `stand sim serve`.

A class of three from labomatics' CSV gets a pool, a VXLAN VNet with a subnet, a user with an
API token and ACLs, and an OpenWrt VM each (`student apply`); a lab (`tp deploy`) clones,
configures, grows and starts one more VM for one group; `student list`, `student status`,
`pool list` and `network vnets` read it back; `tp undeploy` and `student destroy` remove it all.
Each step is checked against the cluster through proxmoxer with TLS verified.

Env: PVE_URL, PVE_TOKEN, PVE_FINGERPRINT, CA_FILE (the served certificate), WORKDIR,
REQUEST_LOG (the server's request log), LABOMATICS (the labomatics command).
"""
import csv
import json
import os
import subprocess
import sys

from proxmoxer import ProxmoxAPI

WORK = os.environ["WORKDIR"]
LOG = os.environ["REQUEST_LOG"]
host = os.environ["PVE_URL"].split("//", 1)[1]
token_user, secret = os.environ["PVE_TOKEN"].rsplit("=", 1)
user, token_name = token_user.split("!")
api = ProxmoxAPI(host, user=user, token_name=token_name, token_value=secret, verify_ssl=os.environ["CA_FILE"])

# What labomatics does not run here, and why; the test prints it.
SKIPPED = [
    "setup: an interactive wizard that also logs in to the nodes over SSH",
    "template build / template openwrt: Packer, SSH to a node and image downloads",
    "quotad: a daemon polling every 30 s; it reads what `student status` reads",
    "LXC containers: labomatics removes a pool's containers too; the simulator has none (README)",
]

# labomatics reads infra.yaml, .env and students.csv from the working directory.
with open(os.path.join(WORK, "infra.yaml"), "w") as f:
    f.write(
        """version: "v1"
openwrt:
  vmid_start: 10000
  template_vmid: 90200
  storage: ceph-vm
  wan_bridge: vmbr0
  students_csv: students.csv
  template_pool: template
  network:
    zone_name: esgilab
    wan_pool: { network: 172.16.0.0/24, gateway: 172.16.0.254, exclude: ["172.16.0.1-172.16.0.10"] }
    vxlan_pool: { network: 10.100.0.0/16, exclude: [] }
flavors:
  CO1: { cpu: 4, ram: 8192, disk: 40 }
"""
    )
with open(os.path.join(WORK, ".env"), "w") as f:
    f.write(f"PROXMOX_HOST={host}\nPROXMOX_TOKEN_ID={token_user}\nPROXMOX_TOKEN_SECRET={secret}\n")
with open(os.path.join(WORK, "students.csv"), "w") as f:
    f.write("id,nom,prenom,flavor,classe\n18,dupont,Jean,CO1,M1_SRC\n46,michel,Marie,CO1,M1_SRC\n240,korniev,Mikhail,CO1,M2_SEC\n")
with open(os.path.join(WORK, "tp.yaml"), "w") as f:
    f.write(
        """name: tp-routage
description: Static routing
tags: [reseau]
target_classes: [M1_SRC]
vms:
  - name: client
    template: 90200
    memory: 1024
    start: true
    disk_size: "+2G"
    cloud_init: { user: etudiant, password: Motdepasse-1 }
"""
    )

STUDENTS = {"jdupont": 18, "mmichel": 46, "mkorniev": 240}


def labomatics(*args):
    """Runs labomatics in the work directory; returns what it printed (it must succeed)."""
    out = subprocess.run(
        [os.environ["LABOMATICS"], *args],
        cwd=WORK,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"},
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, f"labomatics {' '.join(args)} failed:\n{text}"
    assert "❌" not in text and "Traceback" not in text, f"labomatics {' '.join(args)}:\n{text}"
    return text


def writes_since(mark):
    """The write requests the server logged after line `mark`."""
    with open(LOG) as f:
        lines = f.readlines()[mark:]
    return [json.loads(x) for x in lines if json.loads(x)["method"] != "GET"]


def log_mark():
    with open(LOG) as f:
        return len(f.readlines())


# The zone labomatics expects (its README: "Zone VXLAN SDN créée"), made by the instructor.
api.cluster.sdn.zones.post(zone="esgilab", type="vxlan", peers="10.0.0.1,10.0.0.2,10.0.0.3")
api.cluster.sdn.put()

diff = labomatics("student", "diff")
assert "3 à créer" in diff, diff

# ── student apply ────────────────────────────────────────────────────────────
labomatics("student", "apply", "--yes")
pools = {p["poolid"]: p for p in api.pools.get()}
assert set(pools) == set(STUDENTS), pools
vnets = {v["vnet"]: v for v in api.cluster.sdn.vnets.get()}
subnets = set()
for login, sid in STUDENTS.items():
    vnet = f"vn{sid:05d}"
    assert pools[login]["comment"] == f"labomatics-managed:{vnet}", pools[login]
    assert vnets[vnet]["zone"] == "esgilab" and vnets[vnet]["tag"] == sid, vnets[vnet]
    assert "state" not in vnets[vnet], "the SDN configuration was applied"
    (subnet,) = api.cluster.sdn.vnets(vnet).subnets.get()
    assert subnet["subnet"] == f"esgilab-{subnet['network']}-24" and subnet["cidr"].endswith("/24"), subnet
    subnets.add(subnet["cidr"])
    userid = f"{login}@pve"
    assert api.access.users(userid).token("labomatics").get()["privsep"] == 0
    acl = {(a["path"], a["roleid"]) for a in api.access.acl.get() if a["ugid"] == userid}
    assert (f"/pool/{login}", "PVEVMAdmin") in acl and (f"/sdn/zones/esgilab/{vnet}", "PVESDNUser") in acl, acl
    members = api.pools(login).get()["members"]
    assert [m["vmid"] for m in members] == [10000 + sid], members
    vm = members[0]
    assert vm["status"] == "running" and vm["name"] == f"openwrt-{login}", vm
    cfg = api.nodes(vm["node"]).qemu(vm["vmid"]).config.get()
    assert cfg["net1"].endswith(f",bridge={vnet}") and cfg["serial0"] == "socket", cfg
    # A cloud-init drive is made from `STORAGE:cloudinit` (qemu-server create_disks).
    assert cfg["ide2"] == f"ceph-vm:vm-{vm['vmid']}-cloudinit,media=cdrom", cfg["ide2"]
    assert cfg["ipconfig0"].endswith("/24,gw=172.16.0.254"), cfg["ipconfig0"]
    # labomatics' own bug, as it behaves on a real cluster: it reads a subnet's id
    # (`<zone>-<network>-<mask>`, pve-network Subnets.pm) as its CIDR, finds no subnet in
    # use, and gives every router the first subnet's gateway instead of its VNet's.
    assert cfg["ipconfig1"] == "ip=10.100.0.254/24", cfg["ipconfig1"]
assert len(subnets) == 3, subnets
wan = {api.nodes(m["node"]).qemu(m["vmid"]).config.get()["ipconfig0"] for p in pools for m in api.pools(p).get()["members"]}
assert len(wan) == 3, wan

with open(os.path.join(WORK, "credentials.csv")) as f:
    creds = {r["login"]: r for r in csv.DictReader(f)}
assert set(creds) == set(STUDENTS), creds
probe = ProxmoxAPI(host, user="jdupont@pve", password=creds["jdupont"]["password"], verify_ssl=os.environ["CA_FILE"])
assert [r["vmid"] for r in probe.cluster.resources.get(type="vm")] == [10018], "a student sees only their VM"

# Again: nothing to add, nothing written.
mark = log_mark()
assert "Rien à faire" in labomatics("student", "apply", "--yes")
assert writes_since(mark) == [], writes_since(mark)

# ── a lab for one group ──────────────────────────────────────────────────────
labomatics("tp", "deploy", "-f", "tp.yaml", "--yes")
tp_vms = [r for r in api.cluster.resources.get(type="vm") if "labomatics-tp--tp-routage" in (r.get("tags") or "")]
assert sorted(r["name"] for r in tp_vms) == ["jdupont-client", "mmichel-client"], tp_vms
for r in tp_vms:
    cfg = api.nodes(r["node"]).qemu(r["vmid"]).config.get()
    assert r["status"] == "running" and cfg["memory"] == "1024", (r, cfg)
    assert cfg["scsi0"].endswith(",size=3G"), cfg["scsi0"]  # 1G template disk, +2G (resize_vm)
    assert cfg["ciuser"] == "etudiant" and cfg["ide2"].endswith("-cloudinit,media=cdrom"), cfg
    assert "labomatics" in cfg["description"] and cfg["tags"] == "labomatics-tp--tp-routage;reseau", cfg
    pool = "jdupont" if r["name"].startswith("jdupont") else "mmichel"
    assert r["vmid"] in [m["vmid"] for m in api.pools(pool).get()["members"]]

listed = labomatics("student", "list")
for name in ["openwrt-jdupont", "openwrt-mmichel", "jdupont-client", "mmichel-client"]:
    assert name in listed, listed
assert "3 étudiant(s)" in labomatics("student", "status")
assert "3 pool(s)" in labomatics("pool", "list")
assert "3 VNet(s)" in labomatics("network", "vnets")

labomatics("tp", "undeploy", "--tp", "tp-routage", "--yes")
left = [r["name"] for r in api.cluster.resources.get(type="vm")]
assert sorted(left) == ["openwrt-jdupont", "openwrt-mkorniev", "openwrt-mmichel", "openwrt-template"], left

# ── student destroy ──────────────────────────────────────────────────────────
out = labomatics("student", "destroy", "--yes")
assert "⚠  vnet" not in out, out
assert api.pools.get() == []
assert api.cluster.sdn.vnets.get() == []
assert [r["vmid"] for r in api.cluster.resources.get(type="vm")] == [90200]
assert [u["userid"] for u in api.access.users.get()] == ["root@pam"]
assert api.access.acl.get() == []
assert [z["zone"] for z in api.cluster.sdn.zones.get()] == ["esgilab"], "the zone is the instructor's"

for s in SKIPPED:
    print("skipped: " + s)
print("labomatics class: OK")
