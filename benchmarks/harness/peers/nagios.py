"""Nagios 4 with the monitoring plugins on the bench's workload.

The same services (names, types, intervals, targets) become Nagios objects in a
temporary directory, checked by the plugins that do each type's job (check_tcp,
check_http, check_ping, check_dig: check_dns cannot ask a server on another port than
53); ``interval_length=1`` makes the intervals seconds. nagios4 runs in the
foreground as a child, no web interface, no system service. Every check result it
processes is appended to a performance data file with its start (whole seconds),
latency (how late it started: pymon's lateness), execution time and state.
"""

from __future__ import annotations

import asyncio
import grp
import math
import os
import pwd
from pathlib import Path

from benchmarks.harness.options import BenchOptions
from benchmarks.harness.peers.child import Child
from benchmarks.harness.peers.figures import PeerFigures, Sample
from benchmarks.harness.peers.window import Window, measure_window
from benchmarks.harness.preflight import find_program
from benchmarks.harness.targets import DNS_ADDRESS
from benchmarks.harness.workload import DNS_QUERY, PING_HOST, Endpoints, plan

__all__ = ["PLUGINS", "Nagios"]

PLUGINS = "/usr/lib/nagios/plugins"

# After the window, how long results of checks that started in it get to arrive.
END_GRACE = 2.0

# The plugins each kind of point runs (a plugin point runs its own).
_NEEDS = {
    "mixed": ("check_tcp", "check_http"),
    "tcp": ("check_tcp",),
    "http": ("check_http",),
    "ping": ("check_ping",),
    "dns": ("check_dig",),
    "plugin": (),
}

_CHARS = "`~$&|'\"<>"
_PERF_TEMPLATE = "\\t".join(
    ("$LASTSERVICECHECK$", "$SERVICELATENCY$", "$SERVICEEXECUTIONTIME$", "$SERVICESTATEID$")
)


def _timeout(options: BenchOptions) -> int:
    """The check timeout in the whole seconds Nagios and its plugins take."""
    return max(1, math.ceil(options.effective_timeout))


def _commands(endpoints: Endpoints, timeout: int) -> dict[str, str]:
    """A command line per check type; ``$ARG1$`` is the port, ``$ARG2$`` the URL path."""
    t = f"-t {timeout}"
    return {
        "tcp": f"{PLUGINS}/check_tcp -H 127.0.0.1 -p $ARG1$ {t}",
        "http": f"{PLUGINS}/check_http -I 127.0.0.1 -p $ARG1$ -u $ARG2$ {t}",
        # One echo, as pymon's ping services send; loss 100 % is critical.
        "ping": f"{PLUGINS}/check_ping -H {PING_HOST} -p 1 -w 1000,50% -c 2000,100% {t}",
        "dns": (
            f"{PLUGINS}/check_dig -H 127.0.0.1 -p {endpoints.dns_port} -l {DNS_QUERY} "
            f"-a {DNS_ADDRESS} {t}"
        ),
        "plugin": " ".join(endpoints.plugin),
    }


def _objects(options: BenchOptions, endpoints: Endpoints) -> str:
    """The object definitions: one host, a command per type, a service per pymon service."""
    timeout = _timeout(options)
    days = "".join(
        f"  {day} 00:00-24:00\n"
        for day in ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    )
    parts = [
        f"define timeperiod {{\n  timeperiod_name always\n  alias always\n{days}}}\n",
        "define command {\n  command_name none\n  command_line /bin/true\n}\n",
        # Nagios refuses a config without a contact; this one is never notified.
        "define contact {\n  contact_name bench\n  host_notification_period always\n"
        "  service_notification_period always\n  host_notification_commands none\n"
        "  service_notification_commands none\n  host_notifications_enabled 0\n"
        "  service_notifications_enabled 0\n}\n",
        "define host {\n  host_name bench\n  address 127.0.0.1\n  max_check_attempts 1\n"
        "  check_period always\n  active_checks_enabled 0\n  contacts bench\n}\n",
    ]
    for kind, line in _commands(endpoints, timeout).items():
        parts.append(f"define command {{\n  command_name {kind}\n  command_line {line}\n}}\n")
    for service in plan(options, endpoints):
        args = {"tcp": f"!{service.port}", "http": f"!{service.port}!{service.path}"}
        parts.append(
            f"define service {{\n  host_name bench\n  service_description {service.name}\n"
            f"  check_command {service.kind}{args.get(service.kind, '')}\n"
            f"  check_interval {options.interval:g}\n"
            f"  retry_interval {options.interval:g}\n  max_check_attempts 1\n"
            "  check_period always\n  notification_period always\n  contacts bench\n"
            "  notifications_enabled 0\n  flap_detection_enabled 0\n}\n"
        )
    return "".join(parts)


def _main_config(home: Path, timeout: int) -> str:
    """nagios.cfg: every file in ``home``, seconds as the interval unit, perfdata on."""
    settings = {
        "log_file": home / "nagios.log",
        "cfg_file": home / "objects.cfg",
        "object_cache_file": home / "objects.cache",
        "precached_object_file": home / "objects.precache",
        "status_file": home / "status.dat",
        "status_update_interval": 5,
        "nagios_user": pwd.getpwuid(os.geteuid()).pw_name,
        "nagios_group": grp.getgrgid(os.getegid()).gr_name,
        "check_external_commands": 0,
        "command_file": home / "nagios.cmd",
        "query_socket": home / "nagios.qh",
        "lock_file": home / "nagios.lock",
        "temp_file": home / "nagios.tmp",
        "temp_path": home,
        "check_result_path": home,
        "retain_state_information": 0,
        "state_retention_file": home / "retention.dat",
        "interval_length": 1,
        "service_check_timeout": timeout,
        "process_performance_data": 1,
        "service_perfdata_file": home / "perfdata.tsv",
        "service_perfdata_file_template": _PERF_TEMPLATE,
        "service_perfdata_file_mode": "a",
        "enable_notifications": 0,
        "enable_flap_detection": 0,
        "enable_event_handlers": 0,
        "use_syslog": 0,
        "log_initial_states": 0,
        "illegal_macro_output_chars": _CHARS,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _write_config(home: Path, options: BenchOptions, endpoints: Endpoints) -> None:
    home.mkdir()
    (home / "objects.cfg").write_text(_objects(options, endpoints))
    timeout = _timeout(options)
    (home / "nagios.cfg").write_text(_main_config(home, timeout))


def _samples(perfdata: Path, window: Window) -> list[Sample]:
    """The checks that started in ``window``, from the performance data file."""
    samples: list[Sample] = []
    for line in perfdata.read_text().splitlines():
        started, latency, took, state = line.split("\t")
        if window.holds(float(started)):
            samples.append((float(latency), float(took), state == "0"))
    return samples


class Nagios:
    """The peer ``nagios4``: runs the workload, reads its checks back."""

    name = "Nagios 4"

    def __init__(self) -> None:
        self.program = find_program(["nagios4", "nagios"], ["/usr/sbin"])

    def unavailable(self, options: BenchOptions) -> str | None:
        """Why this peer cannot run the point, or None."""
        if self.program is None:
            return "nagios4 not installed (Debian: nagios4-core)"
        for needed in _NEEDS[options.kind]:
            if not os.access(f"{PLUGINS}/{needed}", os.X_OK):
                return f"{PLUGINS}/{needed} not installed (Debian: monitoring-plugins)"
        return None

    async def measure(self, options: BenchOptions, endpoints: Endpoints, home: Path) -> PeerFigures:
        """Run nagios4 on the workload in ``home``; its row over a window like pymon's."""
        assert self.program is not None
        await asyncio.to_thread(_write_config, home, options, endpoints)
        child = await Child.start([self.program, str(home / "nagios.cfg")], home / "out.log")
        try:
            window = await measure_window(options, child.cpu)
            await asyncio.sleep(END_GRACE)
            if child.proc.returncode is not None:
                raise RuntimeError(f"nagios4 exited with {child.proc.returncode}: {child.tail()}")
        finally:
            # Nagios writes the performance data file out as it stops.
            await child.stop()
        try:
            samples = await asyncio.to_thread(_samples, home / "perfdata.tsv", window)
        except FileNotFoundError:
            raise RuntimeError(f"nagios4 wrote no check results: {child.tail()}") from None
        note = "core, check workers and plugins; lateness is Nagios' check latency"
        return PeerFigures.of(self.name, samples, window, options, note)
