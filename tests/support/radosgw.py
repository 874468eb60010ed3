"""A real S3 server for the tests: Ceph's radosgw on a throwaway single-node cluster, on loopback.

moto is a mock: it answers like S3 but it is not what anyone deploys. radosgw (Debian's
`radosgw` package, Ceph 16 "pacific") is a production S3 implementation, so every S3
test runs on it as well. The cluster is as small as Ceph allows: one monitor, one OSD
with the in-memory object store, no cephx, no manager, everything bound to 127.0.0.1,
its files in one temp folder. It answers S3 about 2 s after start (10-15 s with Ceph's default
monitor, which batches every map change for a second: `paxos propose interval` is lowered),
and a test session starts it once (tests/conftest.py); each test uses a key prefix of its own.

A test that needs to take "S3" away starts a gateway of its own on the shared cluster
(`RadosCluster.gateway()`): radosgw is stateless, its data lives in the OSD, so stopping
and starting a gateway takes a fraction of a second, keeps the data, and disturbs no other test.
Facts on the setup: ../shared/notes/radosgw.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from support.processes import free_port, stop_process
from support.s3server import AWS_ENV, S3Process, s3_client

CEPH_BINARIES = ("monmaptool", "ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph")
MEMSTORE_BYTES = 3 * 1024**3  # the OSD's RAM "disk"; the whole suite stores far less
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in each daemon before exec: the kernel sends it SIGTERM if the test process dies
    (even by SIGKILL), so no Ceph daemon outlives an interrupted run."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def ceph_conf(folder: Path, fsid: str, mon_port: int) -> str:
    """One node, no authentication, no redundancy, RAM only; every path under `folder`."""
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
paxos propose interval = 0.01
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd max object name len = 460
osd max object namespace len = 64
run dir = {folder}/run
admin socket =
log file = {folder}/log/$name.log
pid file =
keyring = {folder}/keyring
mon data = {folder}/mon/$name
osd data = {folder}/osd/$id
rgw data = {folder}/rgw/$name
"""


class RadosGateway(S3Process):
    """One radosgw process of a cluster, on its own loopback port."""

    def __init__(self, cluster: RadosCluster, name: str) -> None:
        super().__init__(cluster.bucket)
        self.cluster = cluster
        self.name = name

    def start(self, timeout: float = 90.0) -> RadosGateway:
        # tcp_nodelay: without it every answer that beast writes in two parts (an error, a listing)
        # waits 40 ms for the client's delayed ACK.
        self.proc = self.cluster.spawn(
            "radosgw",
            "-n",
            f"client.rgw.{self.name}",
            "--rgw-frontends",
            f"beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1",
        )
        self.wait_until_answering(timeout, self.cluster.logs)
        return self


class RadosCluster:
    """A single-node Ceph cluster with one gateway, one S3 user (AWS_ENV's keys) and one bucket.

    Has the attributes tests use on any S3 server (`endpoint`, `bucket`, `client()`): those of
    its first gateway, which runs as long as the cluster does.
    """

    def __init__(self, folder: Path, bucket: str = "test-bucket") -> None:
        self.folder = folder
        self.bucket = bucket
        self.conf = folder / "ceph.conf"
        self._daemons: list[subprocess.Popen[bytes]] = []
        self._gateways: list[RadosGateway] = []
        self.main: RadosGateway | None = None
        self.started_in_s = 0.0

    @property
    def endpoint(self) -> str:
        assert self.main is not None, "start() the cluster first"
        return self.main.endpoint

    def client(self) -> Any:
        return s3_client(self.endpoint)

    def ceph(self, *args: str, timeout: float = 60) -> str:
        """Run a Ceph command-line tool on this cluster and return its output."""
        done = subprocess.run(
            [args[0], "-c", str(self.conf), *args[1:]], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def spawn(self, daemon: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a daemon in the foreground (-f), its output in log/, tied to this process's life."""
        with (self.folder / "log" / f"{daemon}.out").open("ab") as out:
            proc = subprocess.Popen(
                [daemon, "-c", str(self.conf), "-f", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                preexec_fn=_die_with_parent,
            )
        self._daemons.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((self.folder / "log").glob("*"))
        )

    def start(self) -> RadosCluster:
        started = time.monotonic()
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        fsid, mon_port = str(uuid.uuid4()), free_port()
        self.conf.write_text(ceph_conf(self.folder, fsid, mon_port), encoding="utf-8")
        try:
            self.ceph(
                "monmaptool",
                "--create",
                "--fsid",
                fsid,
                "--addv",
                "a",
                f"[v2:127.0.0.1:{mon_port}]",
                str(self.folder / "monmap"),
            )
            self.ceph("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(self.folder / "monmap"))
            self.spawn("ceph-mon", "-i", "a")
            osd = self.ceph("ceph", "--connect-timeout", "30", "osd", "create").strip()
            (self.folder / "osd" / osd).mkdir(exist_ok=True)
            self.ceph("ceph-osd", "-i", osd, "--mkfs")
            self.spawn("ceph-osd", "-i", osd)
            self.main = self.gateway("main")
            self.ceph(
                "radosgw-admin",
                "user",
                "create",
                "--uid=tests",
                "--display-name=tests",
                f"--access-key={AWS_ENV['AWS_ACCESS_KEY_ID']}",
                f"--secret={AWS_ENV['AWS_SECRET_ACCESS_KEY']}",
            )
            self.client().create_bucket(Bucket=self.bucket)
            self._warm_up()
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def _warm_up(self) -> None:
        """A fresh cluster's first object read takes about 2 s (index objects are created on first
        use), longer than the short timeouts fault tests configure: pay it here, once."""
        client, key = self.client(), "warm-up/object"
        with contextlib.suppress(client.exceptions.NoSuchKey):
            client.get_object(Bucket=self.bucket, Key=key)
        client.put_object(Bucket=self.bucket, Key=key, Body=b"warm")
        client.list_objects_v2(Bucket=self.bucket, Prefix="warm-up/")
        client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": key}], "Quiet": True})

    def gateway(self, name: str) -> RadosGateway:
        """Another running gateway on this cluster (same users, buckets and objects), stopped with it."""
        gateway = RadosGateway(self, name).start()
        self._gateways.append(gateway)
        return gateway

    def stop(self) -> None:
        """Every gateway, then the OSD, then the monitor (the reverse of start)."""
        for gateway in self._gateways:
            gateway.stop()
        for proc in reversed(self._daemons):
            stop_process(proc)
        self._daemons.clear()
