"""Hosts for tests: network namespaces with a hostname of their own, and a relay to the services.

Each :class:`Host` is a network namespace (``ip netns``) joined to this
machine by a veth pair, whose processes run in a UTS namespace of their own
(``unshare --uts``) under the host's name. The services (PostgreSQL, Redis,
a git daemon) listen on this machine's loopback; a :class:`Relay` the test
starts forwards a *service address* (this machine's, on its loopback
interface, routed from every host over its veth pair) to them. So a process on a host reaches the
services only over the network, by that address, never by ``localhost`` or
a file of another host.

Making namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN);
:func:`can_make_hosts` says whether this process can.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from pathlib import Path


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def can_make_hosts() -> str | None:
    """None if namespaces can be made here; else why not."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    if not (shutil.which("ip") and shutil.which("unshare")):
        return "the ip and unshare commands are missing (iproute2, util-linux)"
    probe = f"pyfi-probe-{uuid.uuid4().hex[:6]}"
    try:
        ip("netns", "add", probe)
        ip("netns", "del", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot make a network namespace: {exc.stderr.strip()}"
    return None


class Relay:
    """Forward TCP connections to ``listen`` on to ``target`` (both (address, port)), each in two threads.

    ``listen``'s port 0 takes a free one: :attr:`port`.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen)
        self.port: int = self.server.getsockname()[1]
        self.server.settimeout(0.5)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.server.close()
        self.thread.join(timeout=5)


class Host:
    """One namespace: ``run`` starts a process there under the host's name."""

    def __init__(self, name: str, netns: str, address: str) -> None:
        self.name, self.netns, self.address = name, netns, address

    def popen(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        wrapped = ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                   f'hostname {self.name} && exec "$@"', "sh", *args]
        with open(log, "ab") as out:
            return subprocess.Popen(wrapped, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill_all(self) -> None:
        """SIGKILL every process of the host: the machine died."""
        done = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, timeout=30)
        for pid in done.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


class Hosts:
    """Hosts on one service address, with relays from that address to this machine's services.

    :meth:`port` is where a service's port of this machine is reached from the hosts, at :attr:`service_address`.
    """

    def __init__(self, names: list[str], services: list[int]) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.subnet = random.randrange(16, 250)  # 10.<subnet>.0.0/16: unlikely to be in use, or used by another run
        self.service_address = f"10.{self.subnet}.0.1"
        self.hosts: list[Host] = []
        self.relays: dict[int, Relay] = {}
        ip("addr", "add", f"{self.service_address}/32", "dev", "lo")  # (no dummy interface: it needs a module)
        for number, name in enumerate(names, start=1):
            self.hosts.append(self._make(number, name))
        for port in services:
            self.relays[port] = Relay((self.service_address, 0), ("127.0.0.1", port))

    def port(self, service: int) -> int:
        return self.relays[service].port

    def _make(self, number: int, name: str) -> Host:
        netns, outside, inside = f"pyfi-{self.tag}-{number}", f"pyf{self.tag}o{number}", f"pyf{self.tag}i{number}"
        near, far = f"10.{self.subnet}.{number}.1", f"10.{self.subnet}.{number}.2"
        ip("netns", "add", netns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", netns)
        ip("addr", "add", f"{near}/24", "dev", outside)
        ip("link", "set", outside, "up")
        for args in (("addr", "add", f"{far}/24", "dev", inside), ("link", "set", inside, "up"),
                     ("link", "set", "lo", "up"), ("route", "add", "default", "via", near)):
            ip("netns", "exec", netns, "ip", *args)
        return Host(name, netns, far)

    def close(self) -> None:
        for host in self.hosts:
            host.kill_all()
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)  # (and its veth pair)
        for relay in self.relays.values():
            relay.close()
        subprocess.run(["ip", "addr", "del", f"{self.service_address}/32", "dev", "lo"], capture_output=True, timeout=30)
