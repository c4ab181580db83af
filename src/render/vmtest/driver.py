# The NixOS VM test script of a nixstack stack: `checks/vm-test.py`, copied verbatim from
# nixstack's src/render/vmtest/driver.py, the same for every stack. It runs the stack's Scenario,
# the steps `nixstack lab test` runs, from data: vm-test.nix sets SCENARIO_JSON (the text of
# checks/scenario.json, which nixstack renders from the Scenario) and OPENSSL in front of this
# file. For the NixOS test driver, whose globals `start_all`, `subtest` and the machines (named
# after the nodes) this script uses.
#
# Each step checks what the lab's step checks (src/lab/run.rs), with the clients inside the VMs:
# curl, ssh, the mariadb client, TCP connects from bash. A failing step is reported and the
# next one runs (each failover step restores what it broke); the test fails at the end.
#
# The data's shape is declared below (the TypedDicts) and checked when it is loaded: every key
# it has is declared and every required one is there. nixstack's tests check the data it renders
# against these declarations, and that the keys this file reads (`value["key"]`,
# `value.get("key")`) are exactly the declared ones: string-keyed lookups here are for the
# scenario's data only. They lint and type-check it as the test driver's build does (pyflakes,
# mypy) and run its secret generation with openssl; they cannot run the VMs (no nixpkgs, no
# KVM-capable NixOS host there).

import json
import os
import secrets
import shlex
import string
import subprocess
import tempfile
import time
import types
from typing import Any, Callable, Literal, NamedTuple, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

# --- the scenario's data (checks/scenario.json) ---------------------------------------------------

# How a TCP connect ends: it connects, it is reset (allowed, nothing listens), or it times out
# (or the source's own firewall or routing refuses it).
Outcome = Literal["open", "refused", "filtered"]

# Where a probe starts: the internet client, the admin network, or a host (`name`).
Source = TypedDict("Source", {"kind": Literal["internet", "admin", "host"], "name": NotRequired[str]})

# One TCP connect and what must come of it; `address` is None when the source has no route to
# the destination (not probed); `also_open`: `open` is as good as the expected `refused` (Galera's
# state transfer ports listen only during a transfer).
Probe = TypedDict(
    "Probe",
    {
        "from": Source,
        "from_address": str,
        "to": str,
        "address": str | None,
        "port": int,
        "expect": Outcome,
        "also_open": bool,
        "reason": str,
    },
)


class Node(TypedDict):
    host: str
    address: str
    port: int


class HttpsViaVip(TypedDict):
    step: Literal["https_via_vip"]
    domain: str
    vip: str
    requests: int
    web_hosts: list[str]


class BackendTls(TypedDict):
    step: Literal["backend_tls"]
    lbs: list[str]
    backends: list[Node]
    health_path: str
    reachable_ports: list[tuple[str, int]]


class AdminSsh(TypedDict):
    step: Literal["admin_ssh"]
    hosts: list[Node]


class MultiMaster(TypedDict):
    step: Literal["multi_master"]
    writers: list[str]
    nodes: list[str]


class FirewallMatrix(TypedDict):
    step: Literal["firewall_matrix"]
    ports: list[int]
    probes: list[Probe]


class WebFailover(TypedDict):
    step: Literal["web_failover"]
    domain: str
    vip: str
    victim: str
    eject_within_ms: int


class DbFailover(TypedDict):
    step: Literal["db_failover"]
    domain: str
    vip: str
    victim: str
    survivors: list[str]
    writers: list[str]


class LbFailover(TypedDict):
    step: Literal["lb_failover"]
    domain: str
    vip: str
    # The virtual IPv6 address: the lab checks that it moves with the VIP; the VM test's
    # VLAN carries IPv4 only, so here it is reported, not probed.
    vip6: str | None
    active: str
    standby: list[str]
    within_ms: int


# A local endpoint a collector reads (`url`; MariaDB over its socket as `user`), the connects
# from everywhere else to its `port`, and the hosts whose logins as `user` must be refused.
class LocalEndpoint(TypedDict):
    host: str
    source: Literal["nginx_stub_status", "haproxy_stats", "mariadb_status"]
    url: str | None
    port: int
    remote: list[Probe]
    remote_logins: list[str]
    user: str | None


class CollectorEndpointsLocal(TypedDict):
    step: Literal["collector_endpoints_local"]
    endpoints: list[LocalEndpoint]


# The steps this script runs, told apart by `step` (the Scenario's own step names).
Check = Union[HttpsViaVip, BackendTls, AdminSsh, MultiMaster, FirewallMatrix, WebFailover, DbFailover, LbFailover, CollectorEndpointsLocal]


# One step of the Scenario: its `check`, or why the VM test does not run it (`skip`).
class Step(TypedDict):
    name: str
    skip: str | None
    check: Check | None


# Where the test and the hosts keep what the steps use, inside the VMs.
class Paths(TypedDict):
    test_dir: str
    client_ca: str
    admin_key: str
    authorized_keys: str
    secrets_dir: str
    host_ca: str
    mysql_socket: str
    haproxy_socket: str


# A host certificate of the stack's CA: host.crt, host.key and host.pem under `directory`.
class HostCertificate(TypedDict):
    directory: str
    common_name: str
    dns_names: list[str]
    ip_addresses: list[str]


# The certificate for the domain (certificate and key in `file`), standing in for Let's Encrypt's.
class PublicCertificate(TypedDict):
    file: str
    common_name: str
    dns_names: list[str]
    ip_addresses: list[str]


class PlainSecret(TypedDict):
    file: str
    text: str


# A file of the secrets directory (`source`) and its name on the host.
class SecretFile(TypedDict):
    source: str
    name: str


# A secret copied to a path of its own on a host, readable by `group`.
class ExtraCopy(TypedDict):
    source: str
    target: str
    group: str


# The stack's secrets, laid out as `nixstack secrets init` lays out `secrets/`: made by this
# script with openssl, thrown away with the test.
class Secrets(TypedDict):
    certificates: list[HostCertificate]
    public_certificate: PublicCertificate | None
    passwords: list[str]
    plain: list[PlainSecret]
    hosts: dict[str, list[SecretFile]]
    extra_copies: dict[str, list[ExtraCopy]]
    db_password_files: dict[str, str]


# A unit a host runs; `held` ones read secrets and start when the script has put them in place.
class Unit(TypedDict):
    name: str
    held: bool


class Scenario(TypedDict):
    stack: str
    ca_name: str
    nodes: list[str]
    client: str
    admin: str
    hosts: list[str]
    lbs: list[str]
    vip: str | None
    host_addresses: dict[str, str]
    address_to_host: dict[str, str]
    paths: Paths
    secrets_group: str
    haproxy_backend: str
    scenario_db: str
    secrets: Secrets
    start_order: list[list[str]]
    units: dict[str, list[Unit]]
    bootstrap: str | None
    omitted: list[str]
    steps: list[Step]


class ScenarioDataError(Exception):
    """The scenario's data is not what this script reads."""


def conform(value: Any, shape: Any, where: str) -> None:
    """Raises ScenarioDataError unless `value` (parsed JSON) has `shape`, a type of this file:
    an object has every key its TypedDict requires and no key it does not declare."""
    origin = get_origin(shape)
    if is_typeddict(shape):
        if not isinstance(value, dict):
            raise ScenarioDataError(f"{where}: not an object: {value!r:.80}")
        hints = get_type_hints(shape)
        missing = sorted(shape.__required_keys__ - value.keys())
        unknown = sorted(value.keys() - hints.keys())
        if missing or unknown:
            raise ScenarioDataError(f"{where}: missing keys {missing}, unknown keys {unknown}")
        for key, item in value.items():
            conform(item, hints[key], f"{where}.{key}")
    elif origin is Literal:
        if value not in get_args(shape):
            raise ScenarioDataError(f"{where}: {value!r:.80} is none of {get_args(shape)}")
    elif origin in (Union, types.UnionType):
        errors: list[tuple[Any, str]] = []
        for alternative in get_args(shape):
            try:
                conform(value, alternative, where)
                return
            except ScenarioDataError as error:
                errors.append((alternative, str(error)))
        # What is wrong with the object its tags name (a `step` names one kind of step).
        named = [error for alternative, error in errors if names(value, alternative)]
        alternatives = ", ".join(getattr(alternative, "__name__", str(alternative)) for alternative, _ in errors)
        raise ScenarioDataError(" / ".join(named) or f"{where}: {value!r:.80} is none of {alternatives}")
    elif origin is list:
        if not isinstance(value, list):
            raise ScenarioDataError(f"{where}: not a list: {value!r:.80}")
        for index, item in enumerate(value):
            conform(item, get_args(shape)[0], f"{where}[{index}]")
    elif origin is tuple:
        kinds = get_args(shape)
        if not isinstance(value, list) or len(value) != len(kinds):
            raise ScenarioDataError(f"{where}: not a list of {len(kinds)}: {value!r:.80}")
        for index, (item, kind) in enumerate(zip(value, kinds)):
            conform(item, kind, f"{where}[{index}]")
    elif origin is dict:
        if not isinstance(value, dict):
            raise ScenarioDataError(f"{where}: not an object: {value!r:.80}")
        for key, item in value.items():
            conform(item, get_args(shape)[1], f"{where}[{key!r}]")
    elif shape is type(None):
        if value is not None:
            raise ScenarioDataError(f"{where}: not null: {value!r:.80}")
    elif shape in (str, int, bool):
        # JSON's true and false are no numbers here.
        if not isinstance(value, shape) or (shape is int and isinstance(value, bool)):
            raise ScenarioDataError(f"{where}: not of type {shape.__name__}: {value!r:.80}")
    else:
        raise TypeError(f"{where}: no check for {shape!r}")


def names(value: Any, shape: Any) -> bool:
    """Whether `value` is an object that `shape`, a TypedDict, describes by its tags: its keys of
    one-value Literal types (`step`), if it has any."""
    if not (is_typeddict(shape) and isinstance(value, dict)):
        return False
    tags = {key: get_args(hint) for key, hint in get_type_hints(shape).items() if get_origin(hint) is Literal and len(get_args(hint)) == 1}
    return all(value.get(key) in allowed for key, allowed in tags.items())


def load_scenario(text: str) -> Scenario:
    data = json.loads(text)
    conform(data, Scenario, "scenario")
    scenario: Scenario = data
    for step in scenario["steps"]:
        if (step["skip"] is None) == (step["check"] is None):
            raise ScenarioDataError(f"step {step['name']!r}: a check or the reason for skipping it, not both or none")
    return scenario


def python_name(node: str) -> str:
    """The test driver's global for a node: its name with every character a Python name cannot
    have replaced by `_` (the driver's `pythonize_name`)."""
    return "".join(
        c if c == "_" or (c.isascii() and c.isalpha()) or (i > 0 and c.isascii() and c.isdigit()) else "_"
        for i, c in enumerate(node)
    )


SCENARIO: Scenario = load_scenario(SCENARIO_JSON)
STACK = SCENARIO["stack"]
CLIENT = SCENARIO["client"]
ADMIN = SCENARIO["admin"]
HOSTS = SCENARIO["hosts"]
LBS = SCENARIO["lbs"]
VIP = SCENARIO["vip"]
HOST_ADDRESSES = SCENARIO["host_addresses"]
ADDRESS_TO_HOST = SCENARIO["address_to_host"]
PATHS = SCENARIO["paths"]
TEST_DIR = PATHS["test_dir"]
CLIENT_CA = PATHS["client_ca"]
ADMIN_KEY = PATHS["admin_key"]
AUTHORIZED_KEYS = PATHS["authorized_keys"]
SECRETS_DIR = PATHS["secrets_dir"]
HOST_CA = PATHS["host_ca"]
MYSQL_SOCKET = PATHS["mysql_socket"]
HAPROXY_SOCKET = PATHS["haproxy_socket"]
SECRETS_GROUP = SCENARIO["secrets_group"]
HAPROXY_BACKEND = SCENARIO["haproxy_backend"]
SCENARIO_DB = SCENARIO["scenario_db"]
SECRETS = SCENARIO["secrets"]
UNITS = SCENARIO["units"]
# The test driver's machines by node name.
MACHINES: dict[str, Any] = {node: globals()[python_name(node)] for node in SCENARIO["nodes"]}
# The machine a probe source connects from: the internet client, the admin VM, or the host.
SOURCE_MACHINES: dict[str, str] = {"internet": CLIENT, "admin": ADMIN}


def source_name(source: Source) -> str:
    """`internet`, `admin` or the host's name."""
    return source.get("name", source["kind"])


# --- helpers ---------------------------------------------------------------------------------------


class ScenarioFailure(Exception):
    """The stack does not do what its Topology says."""


RESULTS: list[tuple[str, str, str]] = []


class Run:
    """What the script keeps between steps: where its throwaway secrets are."""

    secrets = ""


def report(line: str) -> None:
    print(line, flush=True)


def run_step(number: int, name: str, action: Callable[[Any], str], check: Any) -> None:
    title = f"step {number}: {name}"
    try:
        with subtest(title):
            summary = action(check)
    except Exception as error:
        RESULTS.append(("FAIL", title, str(error)))
        return
    RESULTS.append(("PASS", title, summary))


def skip_step(number: int, name: str, why: str) -> None:
    title = f"step {number}: {name}"
    report(f"{title}: skipped in the VM test: {why}")
    RESULTS.append(("SKIP", title, why))


def finish() -> None:
    for verdict, title, summary in RESULTS:
        report(f"{verdict} {title}: {summary}")
    failed = [title for verdict, title, _ in RESULTS if verdict == "FAIL"]
    if failed:
        raise ScenarioFailure(f"{len(failed)} step(s) failed: {', '.join(failed)}")


def verdict(failures: list[str], passed: str) -> str:
    for failure in failures:
        report(f"  ✗ {failure}")
    if failures:
        raise ScenarioFailure("; ".join(failures))
    return passed


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def seconds(duration: float) -> str:
    return f"{duration:.2f}s"


# --- throwaway secrets, made by the test driver -------------------------------------------------


def openssl(*args: str) -> None:
    subprocess.run([OPENSSL, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def write_private(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def read(path: str) -> str:
    with open(path) as file:
        return file.read()


def issue(directory: str, name: str, common_name: str, dns_names: list[str], ip_addresses: list[str]) -> tuple[str, str]:
    """A certificate signed by the throwaway CA, as `nixstack secrets init` issues them (ECDSA
    P-256, server and client use, the names as subject alternative names): (cert, key) PEM."""
    config = os.path.join(directory, f"{name}.cnf")
    alt_names = [f"DNS:{dns}" for dns in dns_names] + [f"IP:{ip}" for ip in ip_addresses]
    write_private(
        config,
        "[req]\nprompt = no\ndistinguished_name = dn\n"
        f"[dn]\nCN = {common_name}\n"
        "[leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth, clientAuth\nsubjectKeyIdentifier = hash\n"
        f"authorityKeyIdentifier = keyid\nsubjectAltName = {', '.join(alt_names)}\n",
    )
    key, request, cert = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-config", config, "-keyout", key, "-out", request)
    openssl("x509", "-req", "-in", request, "-CA", os.path.join(directory, "ca.crt"),
            "-CAkey", os.path.join(directory, "ca.key"), "-set_serial", str(secrets.randbits(63)),
            "-days", "3650", "-extfile", config, "-extensions", "leaf", "-out", cert)
    return read(cert), read(key)


def make_secrets() -> str:
    """Every secret of the stack in a new directory of the driver, laid out as `nixstack secrets
    init` lays out `secrets/`. Thrown away with the test: nothing here enters the Nix store."""
    # Whatever openssl writes is private too (the CA key, the requests, the certificates).
    umask = os.umask(0o077)
    try:
        return write_secrets(tempfile.mkdtemp(prefix="nixstack-vm-test-secrets-"))
    finally:
        os.umask(umask)


def write_secrets(directory: str) -> str:
    work = os.path.join(directory, "work")
    os.makedirs(work, mode=0o700)
    config = os.path.join(work, "ca.cnf")
    write_private(
        config,
        f"[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = {SCENARIO['ca_name']}\nO = {STACK}\n"
        "[ca]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n"
        "keyUsage = critical, keyCertSign, cRLSign, digitalSignature\nsubjectKeyIdentifier = hash\n",
    )
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "3650", "-config", config, "-extensions", "ca",
            "-keyout", os.path.join(directory, "ca.key"), "-out", os.path.join(directory, "ca.crt"))
    for number, host in enumerate(SECRETS["certificates"]):
        cert, key = issue(directory, f"work/host{number}", host["common_name"], host["dns_names"], host["ip_addresses"])
        write_private(os.path.join(directory, host["directory"], "host.crt"), cert)
        write_private(os.path.join(directory, host["directory"], "host.key"), key)
        write_private(os.path.join(directory, host["directory"], "host.pem"), cert + key)
    public = SECRETS["public_certificate"]
    if public is not None:
        cert, key = issue(directory, "work/public", public["common_name"], public["dns_names"], public["ip_addresses"])
        write_private(os.path.join(directory, public["file"]), cert + key)
    alphabet = string.ascii_letters + string.digits
    for file in SECRETS["passwords"]:
        write_private(os.path.join(directory, file), "".join(secrets.choice(alphabet) for _ in range(32)))
    for plain in SECRETS["plain"]:
        write_private(os.path.join(directory, plain["file"]), plain["text"])
    return directory


def install_secrets(directory: str) -> None:
    """Each host's secrets where the deploy puts them: root-owned, readable by the secrets group."""
    for host, files in SECRETS["hosts"].items():
        machine = MACHINES[host]
        for file in files:
            machine.copy_from_host(os.path.join(directory, file["source"]), f"{SECRETS_DIR}/{file['name']}")
        machine.succeed(
            f"chown root:{SECRETS_GROUP} {SECRETS_DIR} {SECRETS_DIR}/*",
            f"chmod 0750 {SECRETS_DIR}",
            f"chmod 0640 {SECRETS_DIR}/*",
        )
        for copy in SECRETS["extra_copies"].get(host, []):
            target = shlex.quote(copy["target"])
            machine.copy_from_host(os.path.join(directory, copy["source"]), copy["target"])
            machine.succeed(f"chown root:{copy['group']} {target}", f"chmod 0640 {target}")
    # The internet client trusts the stack's CA, as the lab's does.
    MACHINES[CLIENT].copy_from_host(os.path.join(directory, "ca.crt"), CLIENT_CA)


def install_admin_key() -> None:
    """A throwaway operator key: made on the admin VM, its public half given to every host."""
    admin = MACHINES[ADMIN]
    admin.succeed(
        f"install -d -m 0700 {TEST_DIR}",
        f"ssh-keygen -q -t ed25519 -N '' -C nixstack-vm-test-admin -f {ADMIN_KEY}",
    )
    public_key = admin.succeed(f"cat {ADMIN_KEY}.pub").strip()
    for host in HOSTS:
        MACHINES[host].succeed(
            f"install -d -m 0755 {TEST_DIR}",
            f"printf '%s\\n' {shlex.quote(public_key)} > {AUTHORIZED_KEYS}",
            f"chmod 0644 {AUTHORIZED_KEYS}",
        )


# --- bring-up ------------------------------------------------------------------------------------


def start_host(host: str) -> None:
    """The host's daemons in the lab's order. Those that read secrets are held back at boot
    (see vm-test.nix) and started here; the Galera bootstrap node starts a new cluster once,
    as MariaDB's galera_new_cluster does."""
    machine = MACHINES[host]
    for entry in UNITS[host]:
        unit, held = entry["name"], entry["held"]
        if held and unit == "mysql.service" and host == SCENARIO["bootstrap"]:
            machine.succeed("systemctl set-environment _WSREP_NEW_CLUSTER=--wsrep-new-cluster")
            try:
                machine.succeed("systemctl start mysql.service", timeout=600)
            finally:
                machine.succeed("systemctl unset-environment _WSREP_NEW_CLUSTER")
        elif held:
            machine.succeed(f"systemctl start --no-block {unit}")
        machine.wait_for_unit(unit, timeout=600)
        if unit == "mysql.service":
            machine.wait_until_succeeds(
                f"mariadb --no-defaults --user=root --batch --skip-column-names --socket={MYSQL_SOCKET} "
                "-e \"SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'\" | grep -q Synced",
                timeout=600,
            )


def bring_up() -> None:
    start_all()
    for host in sorted(MACHINES):
        MACHINES[host].wait_for_unit("multi-user.target")
    Run.secrets = make_secrets()
    install_secrets(Run.secrets)
    install_admin_key()
    for stage in SCENARIO["start_order"]:
        for host in stage:
            start_host(host)
    if LBS:
        wait_for("a load balancer to hold the virtual IP", 60.0, 0.5, vip_holder)


def wait_for(what: str, timeout: float, interval: float, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    last = "never answered"
    while True:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except ScenarioFailure as error:
            last = str(error)
        if time.monotonic() >= deadline:
            raise ScenarioFailure(f"{what}: not ready after {timeout:.0f}s (last: {last})")
        time.sleep(interval)


# --- clients ---------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_response(text: str) -> Response:
    """curl --include output; the last header block wins (after 1xx answers)."""
    rest = text
    while True:
        head, separator, body = rest.partition("\r\n\r\n")
        if not separator:
            raise ScenarioFailure(f"no HTTP response in {text[:200]!r}")
        lines = head.split("\r\n")
        fields = lines[0].split()
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status == 0:
            raise ScenarioFailure(f"not an HTTP status line: {lines[0]!r}")
        if 100 <= status < 200 and body.startswith("HTTP/"):
            rest = body
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        return Response(status, headers, body)


def curl(machine: Any, url: str, timeout: float, cacert: str | None = None, resolve: str | None = None) -> Response:
    args = ["curl", "--silent", "--show-error", "--include", "--max-time", f"{timeout:.1f}",
            "--connect-timeout", f"{min(timeout, 2.0):.1f}"]
    if cacert is not None:
        args += ["--cacert", cacert]
    if resolve is not None:
        args += ["--resolve", resolve]
    args.append(url)
    status, output = machine.execute(" ".join(shlex.quote(arg) for arg in args) + " 2>&1", timeout=int(timeout) + 10)
    if status != 0:
        raise ScenarioFailure(f"{machine.name}: {url}: curl exit {status}: {first_line(output)}")
    return parse_response(output)


def https_get(domain: str, vip: str, path: str, timeout: float) -> Response:
    """`https://<domain><path>` through the virtual IP from the internet client, verified
    against the stack's CA."""
    return curl(MACHINES[CLIENT], f"https://{domain}{path}", timeout, cacert=CLIENT_CA, resolve=f"{domain}:443:{vip}")


class ServedBy(NamedTuple):
    """What the demo app's page says served it: the web node's address, the app, the db."""

    web: str
    app: str
    db: str


def served_by(body: str) -> ServedBy | None:
    """The demo app's `served-by web=.. app=.. db=.. row=..` line, or None if the page is not
    the app's."""
    for line in body.splitlines():
        if "served-by " not in line:
            continue
        pairs: dict[str, str] = {}
        for pair in line.split("served-by ", 1)[1].split("<", 1)[0].split():
            key, equals, value = pair.partition("=")
            if equals:
                pairs[key] = value
        served = ServedBy(*(pairs.get(field, "") for field in ServedBy._fields))
        return served if served.app and served.db else None
    return None


def web_of(response: Response, served: ServedBy | None) -> str:
    name = response.header("x-served-by")
    if name:
        return name
    if served is not None:
        return ADDRESS_TO_HOST.get(served.web, "?")
    return "?"


def sql(host: str, statements: str, timeout: int = 15) -> str:
    """SQL as root over the node's socket; the statements go through stdin."""
    command = (
        f"timeout {timeout} mariadb --no-defaults --user=root --batch --skip-column-names "
        f"--connect-timeout=2 --socket={MYSQL_SOCKET} 2>&1 <<'NIXSTACK_SQL'\n{statements}\nNIXSTACK_SQL"
    )
    status, output = MACHINES[host].execute(command, timeout=timeout + 10)
    if status != 0:
        raise ScenarioFailure(f"{host}: SQL failed (exit {status}): {first_line(output)}")
    return output


def ensure_scenario_table(host: str) -> None:
    sql(host, f"CREATE DATABASE IF NOT EXISTS {SCENARIO_DB};"
              f"CREATE TABLE IF NOT EXISTS {SCENARIO_DB}.writes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
              "node VARCHAR(64) NOT NULL, token VARCHAR(128) NOT NULL, KEY (token)) ENGINE=InnoDB;", 30)


def new_token(label: str) -> str:
    return f"{label}-{time.time_ns()}"


def write_row(host: str, token: str, timeout: int) -> None:
    sql(host, f"INSERT INTO {SCENARIO_DB}.writes (node, token) VALUES ('{host}', '{token}');", timeout)


def count_rows(host: str, token: str) -> int:
    """Rows with `token` on `host`, read causally (waits for replication)."""
    answer = sql(host, f"SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM {SCENARIO_DB}.writes WHERE token = '{token}';")
    try:
        return int(answer.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ScenarioFailure(f"{host}: unexpected answer {answer!r}")


def galera_state(host: str) -> str:
    return sql(host, "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment';", 5).strip().split("\t")[-1]


def vip_holder() -> str | None:
    """The load balancer that carries the virtual IP now (on whichever card keepalived puts it)."""
    for lb in LBS:
        status, output = MACHINES[lb].execute("ip -4 -o addr show")
        if status == 0 and any(word.split("/")[0] == VIP for word in output.split()):
            return lb
    return None


def haproxy_server_status(lb: str, server: str) -> str:
    """The status of `server` in HAProxy's web backend on `lb` (UP, DOWN, MAINT...), read from
    its admin socket."""
    status, output = MACHINES[lb].execute(f"echo 'show stat' | socat -t 2 - UNIX-CONNECT:{HAPROXY_SOCKET}")
    if status != 0:
        raise ScenarioFailure(f"{lb}: cannot read {HAPROXY_SOCKET}")
    lines = output.splitlines()
    header = lines[0].lstrip("# ").split(",") if lines else []
    if "status" not in header:
        raise ScenarioFailure(f"{lb}: no status column in show stat")
    column = header.index("status")
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) > column and fields[0] == HAPROXY_BACKEND and fields[1] == server:
            return fields[column]
    raise ScenarioFailure(f"{lb}: no server {server} in backend {HAPROXY_BACKEND}")


def ejected(status: str) -> bool:
    return status.startswith("DOWN") or status.startswith("MAINT")


def kill_unit(host: str, unit: str) -> None:
    """SIGKILL, as the lab kills a daemon; then `systemctl stop`, so that the unit's own restart
    policy does not bring it back before the step restarts it."""
    MACHINES[host].succeed(f"systemctl kill --signal=SIGKILL {unit}", f"systemctl stop {unit}")


def client_clock() -> float:
    """Now on the internet client, the clock the load samples are taken with."""
    return float(MACHINES[CLIENT].succeed("date +%s.%N").strip())


# Steady client load: `workers` loops of sequential HTTPS requests on the internet client, one
# sample line each: start end curl-exit status x-served-by has-app-page.
LOAD_WORKER = r"""
worker=$1 domain=$2 vip=$3 dir=$4 ca=$5
while [ ! -e "$dir/stop" ]; do
  start=$(date +%s.%N)
  if curl --silent --show-error --include --max-time 3 --connect-timeout 2 --cacert "$ca" \
      --resolve "$domain:443:$vip" "https://$domain/" > "$dir/response.$worker" 2>&1; then rc=0; else rc=$?; fi
  end=$(date +%s.%N)
  status=$(head -n 1 "$dir/response.$worker" | cut -d' ' -f2 | tr -dc 0-9)
  web=$(grep -i '^x-served-by:' "$dir/response.$worker" | head -n 1 | cut -d: -f2 | tr -d ' \r')
  if grep -q 'served-by ' "$dir/response.$worker"; then page=1; else page=0; fi
  echo "$start $end $rc ${status:-0} ${web:--} $page" >> "$dir/samples.$worker"
done
touch "$dir/done.$worker"
"""


class Sample:
    def __init__(self, line: str) -> None:
        fields = line.split()
        self.start = float(fields[0])
        self.end = float(fields[1])
        self.ok = fields[2] == "0" and fields[3] == "200" and fields[5] == "1"
        self.web = fields[4]
        self.error = f"curl exit {fields[2]}, status {fields[3]}"


class Load:
    def __init__(self, domain: str, vip: str, workers: int) -> None:
        self.dir = f"{TEST_DIR}/load"
        self.workers = workers
        client = MACHINES[CLIENT]
        client.succeed(f"rm -rf {self.dir}", f"install -d -m 0700 {self.dir}")
        client.succeed(f"cat > {self.dir}/worker.sh <<'NIXSTACK_LOAD'\n{LOAD_WORKER}\nNIXSTACK_LOAD")
        for worker in range(workers):
            client.succeed(f"bash {self.dir}/worker.sh {worker} {domain} {vip} {self.dir} {CLIENT_CA} >/dev/null 2>&1 &")

    def samples(self) -> list[Sample]:
        text = MACHINES[CLIENT].succeed(f"cat {self.dir}/samples.* 2>/dev/null || true")
        return [Sample(line) for line in text.splitlines() if len(line.split()) == 6]

    def finish(self) -> list[Sample]:
        client = MACHINES[CLIENT]
        client.succeed(f"touch {self.dir}/stop")
        done = " && ".join(f"test -e {self.dir}/done.{worker}" for worker in range(self.workers))
        client.wait_until_succeeds(done, timeout=30)
        return self.samples()


def summarize(samples: list[Sample], killed_at: float, ejected_at: float) -> None:
    before = [s for s in samples if s.start < killed_at]
    window = [s for s in samples if killed_at <= s.start < ejected_at]
    after = [s for s in samples if s.start >= ejected_at]
    by_web: dict[str, int] = {}
    for sample in samples:
        if sample.ok:
            by_web[sample.web] = by_web.get(sample.web, 0) + 1
    slowest = max((s.end - s.start for s in samples), default=0.0)
    report(f"  client requests: {len(before)} before the kill, {len(window)} between kill and ejection "
           f"({sum(1 for s in window if not s.ok)} failed), {len(after)} after "
           f"({sum(1 for s in after if not s.ok)} failed); slowest {seconds(slowest)}")
    report("  served by " + " ".join(f"{web}×{count}" for web, count in sorted(by_web.items())))


# --- the steps -------------------------------------------------------------------------------------


def https_via_vip(step: HttpsViaVip) -> str:
    domain, vip, requests, web_hosts = step["domain"], step["vip"], step["requests"], step["web_hosts"]
    failures: list[str] = []
    webs: set[str] = set()
    apps: set[str] = set()
    dbs: set[str] = set()
    for _ in range(requests):
        try:
            response = https_get(domain, vip, "/", 5.0)
        except ScenarioFailure as error:
            failures.append(str(error))
            continue
        served = served_by(response.body)
        if response.status == 200 and served is not None:
            webs.add(web_of(response, served))
            apps.add(served.app)
            dbs.add(served.db)
            if response.header("strict-transport-security") is None:
                failures.append("no Strict-Transport-Security header")
        else:
            failures.append(f"status {response.status}: {first_line(response.body)}")
    report(f"  {requests - len(failures)}/{requests} answered by the app; certificate verified against the stack CA")
    report(f"  served by web {','.join(sorted(webs)) or '-'} · app {','.join(sorted(apps)) or '-'} · db {','.join(sorted(dbs)) or '-'}")
    try:
        redirect = curl(MACHINES[CLIENT], f"http://{domain}/", 3.0, resolve=f"{domain}:80:{vip}")
        location = redirect.header("location") or ""
        if 301 <= redirect.status <= 308 and location.startswith("https://"):
            report(f"  http://{domain}/ → {redirect.status} {location}")
        else:
            failures.append(f"http://{domain}/ answered {redirect.status} without an https redirect")
    except ScenarioFailure as error:
        failures.append(str(error))
    unknown = sorted(web for web in webs if web not in web_hosts)
    if unknown:
        failures.append(f"served by unknown web hosts {unknown}")
    return verdict(failures, f"{requests} HTTPS requests via {vip} OK, {len(webs)} web node(s) seen")


def backend_tls(step: BackendTls) -> str:
    lbs, backends, health_path = step["lbs"], step["backends"], step["health_path"]
    failures: list[str] = []
    for lb in lbs:
        machine = MACHINES[lb]
        for backend in backends:
            host, address, port = backend["host"], backend["address"], backend["port"]
            url = f"https://{host}:{port}{health_path}"
            try:
                response = curl(machine, url, 3.0, cacert=HOST_CA, resolve=f"{host}:{port}:{address}")
                if response.status != 200:
                    failures.append(f"{lb} → {url}: status {response.status}")
            except ScenarioFailure as error:
                failures.append(f"{lb} → {url}: {error}")
        for host, port in step["reachable_ports"]:
            url = f"http://{HOST_ADDRESSES[host]}:{port}{health_path}"
            try:
                response = curl(machine, url, 2.0)
            except ScenarioFailure:
                report(f"  {lb} → {host}:{port} plaintext: no HTTP answer")
                continue
            if response.status < 400:
                failures.append(f"{lb} → {url}: plaintext HTTP answered {response.status}")
            else:
                report(f"  {lb} → {host}:{port} plaintext: refused by the server ({response.status})")
    if not failures:
        report(f"  {len(lbs)} LB(s) × {len(backends)} web backend(s): TLS verified for the backend's name against the internal CA")
    return verdict(failures, "every backend TLS-verified, no plaintext port answers")


def admin_ssh(step: AdminSsh) -> str:
    hosts = step["hosts"]
    failures: list[str] = []
    admin = MACHINES[ADMIN]
    for node in hosts:
        host, address, port = node["host"], node["address"], node["port"]
        status, output = admin.execute(
            f"ssh -i {ADMIN_KEY} -p {port} -o BatchMode=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o LogLevel=ERROR root@{address} uname -n 2>&1",
            timeout=20,
        )
        lines = output.strip().splitlines()
        name = lines[-1] if lines else ""
        if status != 0:
            failures.append(f"{host}: ssh exit {status}: {name}")
        elif name != host:
            failures.append(f"{host}: logged in, but the host says it is {name!r}")
    return verdict(failures, f"root login with the admin key on all {len(hosts)} hosts")


def multi_master(step: MultiMaster) -> str:
    writers, nodes = step["writers"], step["nodes"]
    ensure_scenario_table(writers[0])
    failures: list[str] = []
    for writer in writers:
        token = new_token(f"mm-{writer}")
        try:
            write_row(writer, token, 15)
        except ScenarioFailure as error:
            failures.append(f"write through {writer}: {error}")
            continue
        seen: list[str] = []
        for node in nodes:
            if node == writer:
                continue
            try:
                copies = count_rows(node, token)
            except ScenarioFailure as error:
                failures.append(f"read on {node}: {error}")
                continue
            if copies == 1:
                seen.append(node)
            else:
                failures.append(f"row written on {writer}: {copies} copies on {node}")
        report(f"  written through {writer}, read back on {', '.join(seen) or '-'}")
    return verdict(failures, f"{len(writers)} writer(s) × {len(nodes)} node(s) consistent")


# A TCP connect from bash: `open` when it connects, `refused` on a reset, `filtered` on a
# timeout, on the source's own firewall (EPERM) or on an unreachable network, as in the lab.
PROBE_FUNCTION = r"""
probe() {
  if timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>"$3"; then echo "$1 $2 open"
  elif grep -q 'Connection refused' "$3"; then echo "$1 $2 refused"
  else echo "$1 $2 filtered"; fi
  rm -f "$3"
}
"""


def connect_all(source: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Every TCP connect of one source at once (a matrix of filtered ports costs one timeout)."""
    machine = MACHINES[SOURCE_MACHINES.get(source, source)]
    directory = f"{TEST_DIR}/probes"
    lines = [PROBE_FUNCTION, f"rm -rf {directory}", f"install -d -m 0700 {directory}"]
    for number, (address, port) in enumerate(targets):
        lines.append(f"probe {address} {port} {directory}/{number} &")
    lines.append("wait")
    output = machine.succeed("\n".join(lines), timeout=120)
    outcomes: dict[tuple[str, int], str] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1].isdigit():
            outcomes[(fields[0], int(fields[1]))] = fields[2]
    return outcomes


def render_matrix(ports: list[int], probes: list[Probe], observed: dict[tuple[str, str, int], str]) -> list[str]:
    """One grid per port, rows sources, columns destinations: `O` connected, `r` reset, `.`
    filtered, blank no route or self; `!` marks a cell that differs from the Topology."""
    sources = ["internet", "admin"] + HOSTS
    width = max([len(host) for host in HOSTS] + [4]) + 1
    source_width = max(len(source) for source in sources) + 2
    expected = {(source_name(p["from"]), p["to"], p["port"]): p for p in probes}
    symbols = {"open": "O", "refused": "r", "filtered": "."}
    lines = ["O connects · r reset (allowed, nothing listens) · . filtered · ! differs from the Topology"]
    for port in ports:
        lines.append(f"{'port ' + str(port):<{source_width}}" + "".join(f"{host:>{width}}" for host in HOSTS))
        for source in sources:
            line = f"  {source:<{source_width - 2}}"
            for host in HOSTS:
                probe = expected.get((source, host, port))
                got = observed.get((source, host, port))
                cell = ""
                if probe is not None and got is not None:
                    cell = symbols[got] if accepts(probe, got) else "!" + symbols[got]
                line += f"{cell:>{width}}"
            lines.append(line.rstrip())
    return lines


def accepts(probe: Probe, got: str) -> bool:
    return got == probe["expect"] or (probe["also_open"] and got == "open")


def routed(probes: list[Probe]) -> list[Probe]:
    """The probes whose source has a route to the destination: the others are not probed."""
    return [probe for probe in probes if probe["address"] is not None]


def run_probes(probes: list[Probe]) -> tuple[dict[tuple[str, str, int], str], list[str]]:
    """Every probe, one batch per source: what each connect did, by (source, destination, port),
    and each that differs from the Topology, with why it should not."""
    by_source: dict[str, list[Probe]] = {}
    for probe in probes:
        by_source.setdefault(source_name(probe["from"]), []).append(probe)
    observed: dict[tuple[str, str, int], str] = {}
    mismatches: list[str] = []
    for source, source_probes in by_source.items():
        outcomes = connect_all(source, [(str(p["address"]), p["port"]) for p in source_probes])
        for probe in source_probes:
            got = outcomes.get((str(probe["address"]), probe["port"]), "missing")
            observed[(source, probe["to"], probe["port"])] = got
            if not accepts(probe, got):
                mismatches.append(
                    f"{source} ({probe['from_address']}) → {probe['to']}:{probe['port']} ({probe['address']}): "
                    f"expected {probe['expect']}, got {got} — {probe['reason']}"
                )
    return observed, mismatches


def firewall_matrix(step: FirewallMatrix) -> str:
    probes = routed(step["probes"])
    observed, mismatches = run_probes(probes)
    for line in render_matrix(step["ports"], probes, observed):
        report("  " + line)
    n_open = sum(1 for got in observed.values() if got == "open")
    verdict(mismatches, "")
    return f"{len(probes)} connects match the firewall exactly ({n_open} open)"


def web_failover(step: WebFailover) -> str:
    domain, vip, victim, eject_within_ms = step["domain"], step["vip"], step["victim"], step["eject_within_ms"]
    holder = vip_holder()
    if holder is None:
        raise ScenarioFailure("no load balancer holds the virtual IP")
    # A `str` for the closures below (mypy does not carry the narrowing into a lambda).
    active: str = holder
    report(f"  active load balancer {active}; victim {victim}")
    failures: list[str] = []
    load = Load(domain, vip, 2)
    stopped = False
    try:
        time.sleep(1.0)
        killed_at = client_clock()
        killed = time.monotonic()
        kill_unit(victim, "nginx.service")
        report(f"  killed nginx on {victim} (SIGKILL)")
        wait_for("HAProxy to eject the web node", 10.0, 0.02, lambda: ejected(haproxy_server_status(active, victim)))
        eject_time = time.monotonic() - killed
        ejected_at = client_clock()
        report(f"  HAProxy on {active} ejected {victim} after {seconds(eject_time)}")
        time.sleep(1.5)
        restarted_at = client_clock()
        restarted = time.monotonic()
        MACHINES[victim].succeed("systemctl start nginx.service")
        stopped = True
        try:
            wait_for("HAProxy to take the web node back", 15.0, 0.05, lambda: haproxy_server_status(active, victim) == "UP")
            report(f"  {victim} back UP in HAProxy {seconds(time.monotonic() - restarted)} after the restart")
            wait_for(
                "a request served by the restarted node", 10.0, 0.2,
                lambda: any(s.ok and s.start > restarted_at and s.web == victim for s in load.samples()),
            )
        except ScenarioFailure as error:
            failures.append(str(error))
        samples = load.finish()
        summarize(samples, killed_at, ejected_at)
        failed_after = [s for s in samples if s.start >= ejected_at and not s.ok]
        if eject_time * 1000 > eject_within_ms:
            failures.append(f"ejection took {seconds(eject_time)} (budget {eject_within_ms} ms)")
        if failed_after:
            failures.append(f"{len(failed_after)} client request(s) failed after the ejection: {failed_after[0].error}")
        return verdict(failures, f"ejected in {seconds(eject_time)}, 0 failed requests after, rejoined")
    finally:
        if not stopped:
            MACHINES[victim].succeed("systemctl start nginx.service")
        MACHINES[CLIENT].succeed(f"touch {load.dir}/stop")


def db_failover(step: DbFailover) -> str:
    domain, vip, victim, writers = step["domain"], step["vip"], step["victim"], step["writers"]
    failures: list[str] = []
    ensure_scenario_table(step["survivors"][0])
    tokens: list[str] = []
    killed = time.monotonic()
    try:
        kill_unit(victim, "mysql.service")
        report(f"  killed mariadbd on {victim} (SIGKILL)")
        for writer in writers:
            token = new_token(f"dbfail-{writer}")
            started = time.monotonic()
            try:
                write_row(writer, token, 20)
                report(f"  write through {writer} committed {seconds(time.monotonic() - killed)} after the kill "
                       f"(took {seconds(time.monotonic() - started)})")
                tokens.append(token)
            except ScenarioFailure as error:
                failures.append(f"write through {writer}: {error}")
        app_ok = 0
        app_dbs: set[str] = set()
        for _ in range(6):
            try:
                response = https_get(domain, vip, "/", 5.0)
            except ScenarioFailure as error:
                failures.append(f"app via the VIP: {error}")
                continue
            served = served_by(response.body)
            if response.status != 200:
                failures.append(f"app via the VIP: status {response.status}: {first_line(response.body)}")
            elif served is None:
                failures.append("the page is not the app's")
            elif served.db == victim:
                failures.append(f"the app reports db {victim} although it is down")
            else:
                app_ok += 1
                app_dbs.add(served.db)
        report(f"  {app_ok}/6 app requests through the VIP wrote via {','.join(sorted(app_dbs)) or '-'}")
    finally:
        restarted = time.monotonic()
        MACHINES[victim].succeed("systemctl start mysql.service", timeout=600)
    try:
        wait_for(f"{victim} to reach Synced", 300.0, 1.0, lambda: galera_state(victim) == "Synced")
        report(f"  {victim} restarted, rejoined and Synced in {seconds(time.monotonic() - restarted)}")
    except ScenarioFailure as error:
        failures.append(f"{victim} did not rejoin: {error}")
    for token in tokens:
        try:
            copies = count_rows(victim, token)
            if copies != 1:
                failures.append(f"{victim} has {copies} copies of a row written while it was down")
        except ScenarioFailure as error:
            failures.append(f"read on {victim}: {error}")
    if tokens and not failures:
        report(f"  {victim} has the {len(tokens)} row(s) written while it was down")
    return verdict(failures, f"writes continued without {victim}; it rejoined Synced")


def lb_failover(step: LbFailover) -> str:
    domain, vip, primary, standby, within_ms = step["domain"], step["vip"], step["active"], step["standby"], step["within_ms"]
    active = vip_holder() or primary
    report(f"  {active} holds {vip}")
    if step["vip6"] is not None:
        report(f"  the VIP6 {step['vip6']} is not probed here (IPv4-only VLAN); the lab's lb failover checks it")
    failures: list[str] = []
    https_get(domain, vip, "/", 5.0)
    # A clean stop, as a host shutdown does: keepalived gives the VIP up, HAProxy exits.
    stopped = time.monotonic()
    MACHINES[active].succeed("systemctl stop keepalived.service haproxy.service")
    report(f"  stopped keepalived and haproxy on {active}")

    def answers() -> bool:
        response = https_get(domain, vip, "/", 0.5)
        return response.status == 200 and served_by(response.body) is not None

    try:
        wait_for("HTTPS through the VIP after the failover", 15.0, 0.01, answers)
        took = time.monotonic() - stopped
        holder = vip_holder()
        report(f"  HTTPS answered again after {seconds(took)} (VIP now on {holder or 'nobody'})")
        if took * 1000 > within_ms:
            failures.append(f"HTTPS came back after {seconds(took)} (budget {within_ms} ms)")
        if holder is None or holder == active or (holder not in standby and holder not in LBS):
            failures.append(f"the VIP is on {holder}, not on a standby LB")
    except ScenarioFailure as error:
        took = 0.0
        failures.append(str(error))
    finally:
        # Bring the stopped LB back. The LBs do not preempt: the VIP stays on its new holder,
        # whose connections a second move would reset (watched longer than a preempting LB needs).
        holder = vip_holder()
        restarted = time.monotonic()
        MACHINES[active].succeed("systemctl start haproxy.service", "systemctl start keepalived.service")
    try:
        wait_for("HTTPS after the LB came back", 15.0, 0.1, lambda: https_get(domain, vip, "/", 1.0).status == 200)
        while time.monotonic() < restarted + 6.0:
            now = vip_holder()
            if now != holder:
                failures.append(f"the VIP moved again when {active} came back (to {now or 'nobody'}): a second interruption")
                break
            time.sleep(0.1)
        else:
            report(f"  {active} back; the VIP stays on {holder or 'nobody'}")
    except ScenarioFailure as error:
        failures.append(f"after restoring {active}: {error}")
    return verdict(failures, f"VIP moved, HTTPS back in {seconds(took)}")


def password_file(user: str) -> str:
    """The file of the secrets directory holding `user`'s MariaDB password."""
    return SECRETS["db_password_files"][user]


def collector_endpoints_local(step: CollectorEndpointsLocal) -> str:
    """What the collectors read answers on the host itself; every other namespace's connects
    end as the bind address and the firewall say; remote monitor logins are refused."""
    endpoints = step["endpoints"]
    failures: list[str] = []
    for endpoint in endpoints:
        host, source, url, user = endpoint["host"], endpoint["source"], endpoint["url"], endpoint["user"]
        machine = MACHINES[host]
        if url is not None:
            status, output = machine.execute(
                "curl --silent --show-error --max-time 3 --output /dev/null --write-out '%{http_code}' "
                + shlex.quote(url), timeout=20)
            if status != 0 or output.strip() != "200":
                failures.append(f"{host}: {source} {url} answered {output.strip() or 'nothing'} on the host itself")
        if user is not None:
            file = f"{SECRETS_DIR}/{password_file(user)}"
            status, output = machine.execute(
                f"MYSQL_PWD=\"$(cat {file})\" mariadb --no-defaults --user={user} --socket={MYSQL_SOCKET} "
                "--batch --skip-column-names -e \"SHOW GLOBAL STATUS LIKE 'Uptime'\" 2>&1", timeout=20)
            if status != 0:
                failures.append(f"{host}: the monitor account cannot read the status locally: {first_line(output)}")
    probes = routed([probe for endpoint in endpoints for probe in endpoint["remote"]])
    _, mismatches = run_probes(probes)
    failures += mismatches
    logins = 0
    for endpoint in endpoints:
        user = endpoint["user"]
        for client in endpoint["remote_logins"]:
            if user is None:
                failures.append(f"{client} → {endpoint['host']}: a remote login to try without an account")
                continue
            password = read(os.path.join(Run.secrets, password_file(user))).strip()
            status, output = MACHINES[client].execute(
                f"MYSQL_PWD={shlex.quote(password)} mariadb --no-defaults --host={HOST_ADDRESSES[endpoint['host']]} "
                f"--port={endpoint['port']} --user={user} --connect-timeout=3 --skip-ssl-verify-server-cert "
                "-e 'SELECT 1' 2>&1", timeout=20)
            logins += 1
            # ERROR 20xx are the client's own (no connection, TLS); any other error is the
            # server's. Clients from MariaDB 11.4 on verify the server's certificate by default,
            # which a login that must fail cannot pass: that check is not what is tested here.
            refused = status != 0 and "ERROR " in output and "ERROR 20" not in output
            if status == 0:
                failures.append(f"{client} logged in to {endpoint['host']} as {user}")
            elif not refused:
                failures.append(f"{client} → {endpoint['host']} as {user}: not refused by the server: {first_line(output)}")
    report(f"  {len(endpoints)} endpoint(s) read locally, {len(probes)} remote connects, {logins} remote monitor login(s)")
    return verdict(failures, f"{len(endpoints)} collector endpoint(s) local only")


# --- the run ---------------------------------------------------------------------------------------

# The function that runs each kind of step, by the Scenario's step name.
STEPS: dict[str, Callable[[Any], str]] = {
    "https_via_vip": https_via_vip,
    "backend_tls": backend_tls,
    "admin_ssh": admin_ssh,
    "multi_master": multi_master,
    "firewall_matrix": firewall_matrix,
    "web_failover": web_failover,
    "db_failover": db_failover,
    "lb_failover": lb_failover,
    "collector_endpoints_local": collector_endpoints_local,
}


def main() -> None:
    """Bring-up in the Topology's start order, then the Scenario's steps in order, the verdict."""
    bring_up()
    for note in SCENARIO["omitted"]:
        report(f"omitted by the Scenario: {note}")
    for number, step in enumerate(SCENARIO["steps"], start=1):
        check, skip = step["check"], step["skip"]
        if check is not None:
            run_step(number, step["name"], STEPS[check["step"]], check)
        else:
            skip_step(number, step["name"], str(skip))
    finish()


main()
