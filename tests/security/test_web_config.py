"""The web configuration loader: the exporter-toolkit format, one clear error for any mistake."""

from __future__ import annotations

import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import PASSWORD, bcrypt_hash

from livekit_agents_exporter.config_file import ConfigError
from livekit_agents_exporter.prometheus_syntax import parse_duration
from livekit_agents_exporter.web_config import load_web_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "web.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tls_block(pki, **extra: str) -> str:
    lines = [f"  cert_file: {pki.server.cert}", f"  key_file: {pki.server.key}"]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "tls_server_config:\n" + "\n".join(lines) + "\n"


def test_full_example_loads_into_an_ssl_context_and_users(pki, tmp_path):
    path = write(tmp_path, tls_block(pki, client_auth_type="RequireAndVerifyClientCert",
                                     client_ca_file=pki.ca[0].cert, min_version="TLS13")
                 + "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
                 + f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n")
    config = load_web_config(path)
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert set(config.users) == {"prometheus"}
    assert config.headers == {"X-Content-Type-Options": "nosniff"}
    assert "TLS13..TLS13" in config.describe() and "1 user" in config.describe()


def test_relative_paths_are_relative_to_the_config_file(pki, tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "s.crt").write_bytes(pki.server.cert.read_bytes())
    (sub / "s.key").write_bytes(pki.server.key.read_bytes())
    path = write(sub, "tls_server_config: {cert_file: s.crt, key_file: s.key}\n")
    assert load_web_config(path).tls


def test_empty_file_means_plain_http_without_auth(tmp_path):
    config = load_web_config(write(tmp_path, ""))
    assert config.ssl_context is None and not config.users


def test_verify_if_given_and_request_client_cert_modes(pki, tmp_path):
    given_ = load_web_config(write(tmp_path, tls_block(
        pki, client_auth_type="VerifyClientCertIfGiven", client_ca_file=pki.ca[0].cert)))
    assert given_.ssl_context.verify_mode == ssl.CERT_OPTIONAL
    requested = load_web_config(write(tmp_path, tls_block(
        pki, client_auth_type="RequestClientCert", client_ca_file=pki.ca[0].cert), "r.yml"))
    assert requested.ssl_context.verify_mode == ssl.CERT_NONE  # Go never refuses anyone here


def test_go_cipher_names_are_mapped(pki, tmp_path):
    config = load_web_config(write(tmp_path, tls_block(pki, max_version="TLS12") +
                                   "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"))
    names = {c["name"] for c in config.ssl_context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names == {"ECDHE-ECDSA-AES128-GCM-SHA256"}


@pytest.mark.parametrize("text, key, fragment", [
    ("tls_server_config: {cert_file: x}\nbogus: 1\n", "bogus", "unknown key"),
    ("http_server_config: {htt2: true}\n", "http_server_config.htt2", "unknown key"),
    ("http_server_config: {http2: 'yes please'}\n", "http_server_config.http2",
     "must be a boolean"),
    ("http_server_config: {headers: {X-Powered-By: me}}\n",
     "http_server_config.headers.X-Powered-By", "cannot be set"),
    ("http_server_config: {headers: {X-Frame-Options: allow}}\n",
     "http_server_config.headers.X-Frame-Options", "must be one of deny, sameorigin"),
    ("basic_auth_users: [alice]\n", "basic_auth_users", "must be a mapping"),
    ("basic_auth_users: {alice: null}\n", "basic_auth_users.alice", "is required"),
    ("basic_auth_users: {'a:b': '$2y$10$abc'}\n", "basic_auth_users.a:b", "cannot contain ':'"),
    ("rate_limit: {interval: 5 seconds, burst: 1}\n", "rate_limit.interval", "must be a duration"),
    ("rate_limit: {interval: 1s, burst: -1}\n", "rate_limit.burst", "must not be negative"),
    ("rate_limit: {interval: 1s}\n", "rate_limit.burst", "at least 1"),
    ("tls_server_config: 7\n", "tls_server_config", "must be a mapping"),
    ("- a\n- b\n", "(top level)", "must be a mapping"),
    ("basic_auth_users:\n  a: x\n  a: y\n", "", "duplicate key 'a'"),
    ("tls_server_config: {cert_file: [\n", "", "invalid YAML at line"),
    ("tls_server_config: {cert: '-----BEGIN'}\n", "tls_server_config.cert", "inline certificates"),
    ("tls_server_config: {curve_preferences: [X25519]}\n", "tls_server_config.curve_preferences",
     "not supported"),
    ("? [a, b]\n: c\n", "", "mapping key must be a plain value"),
    ("1: a\n", "1", "keys must be strings"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    if key:
        assert f": {key}: " in message, message
    assert fragment in message, message
    assert "\n" not in message


@pytest.mark.parametrize("extra, key, fragment", [
    ({"min_version": "TLS14"}, "min_version", "must be one of TLS10, TLS11, TLS12, TLS13"),
    ({"min_version": "TLS13", "max_version": "TLS12"}, "min_version", "above max_version"),
    ({"client_auth_type": "RequireAnyClientCert"}, "client_auth_type", "not supported"),
    ({"client_auth_type": "Sometimes"}, "client_auth_type", "must be one of"),
    ({"client_auth_type": "RequireAndVerifyClientCert"}, "client_ca_file", "is required"),
    ({"client_ca_file": "CA"}, "client_ca_file", "client_auth_type is NoClientCert"),
    ({"client_allowed_sans": "[a]", "client_auth_type": "VerifyClientCertIfGiven",
      "client_ca_file": "CA"}, "client_allowed_sans", "RequireAndVerifyClientCert"),
    ({"cipher_suites": "[TLS_FANCY]"}, "cipher_suites", "unknown cipher suite"),
    ({"prefer_server_cipher_suites": "1"}, "prefer_server_cipher_suites", "must be a boolean"),
])
def test_tls_mistakes_name_the_key(pki, tmp_path, extra, key, fragment):
    extra = {k: (str(pki.ca[0].cert) if v == "CA" else v) for k, v in extra.items()}
    path = write(tmp_path, tls_block(pki, **extra))
    with pytest.raises(ConfigError, match=f"tls_server_config.{key}: .*{fragment}"):
        load_web_config(path)


def test_certificate_file_problems_name_the_file(pki, tmp_path):
    missing = write(tmp_path,
                    f"tls_server_config: {{cert_file: nope.crt, key_file: {pki.server.key}}}\n")
    with pytest.raises(ConfigError, match=r"tls_server_config.cert_file: cannot read .*nope.crt"):
        load_web_config(missing)
    no_key = write(tmp_path, f"tls_server_config: {{cert_file: {pki.server.cert}}}\n", "k.yml")
    with pytest.raises(ConfigError, match="tls_server_config.key_file: is required"):
        load_web_config(no_key)
    not_pem = tmp_path / "garbage.crt"
    not_pem.write_text("hello")
    bad = write(tmp_path,
                f"tls_server_config: {{cert_file: {not_pem}, key_file: {pki.server.key}}}\n",
                "g.yml")
    with pytest.raises(ConfigError, match="cert_file: .*garbage.crt holds no PEM certificate"):
        load_web_config(bad)
    other = pki.client("mismatch")
    mismatched = write(tmp_path, f"tls_server_config: {{cert_file: {pki.server.cert}, "
                                 f"key_file: {other.key}}}\n", "m.yml")
    with pytest.raises(ConfigError, match="key_file: .*does not match the certificate"):
        load_web_config(mismatched)
    encrypted = write(tmp_path, f"tls_server_config: {{cert_file: {pki.server.cert}, "
                                f"key_file: {pki.encrypted_key()}}}\n", "e.yml")
    with pytest.raises(ConfigError, match="key_file: .*encrypted"):
        load_web_config(encrypted)


def test_plain_password_is_refused_without_repeating_it(tmp_path):
    path = write(tmp_path, "basic_auth_users:\n  alice: hunter2-secret\n  bob: 12345\n")
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert "basic_auth_users.alice: must be a bcrypt hash" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    path = write(tmp_path, "basic_auth_users:\n  bob: 12345\n", "b.yml")
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert "must be a string, got an integer" in str(caught.value)
    assert "12345" not in str(caught.value)


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_web_config(tmp_path / "absent.yml")
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_web_config(binary)


@pytest.mark.parametrize("text, seconds", [
    ("0", 0.0), ("1s", 1.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5h", 5400.0),
    ("1", None), ("s", None), ("1s2", None), ("-1s", None),
])
def test_go_durations(text, seconds):
    assert parse_duration(text, go=True) == seconds


# -- fuzz: any document yields a config or the documented ConfigError --------------------
KEYS = ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit", "cert_file",
        "key_file", "client_auth_type", "client_ca_file", "client_ca", "min_version", "max_version",
        "client_allowed_sans", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences",
        "http2", "headers", "interval", "burst", "X-Frame-Options", "Content-Security-Policy",
        "TLS12", "RequireAndVerifyClientCert", "alice"]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(KEYS)
           | st.text(max_size=20))
documents = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children,
                                        max_size=5)),
    max_leaves=25)


def _load_quietly(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_web_config(path)
        except ConfigError as exc:
            assert str(exc).startswith(str(path)), exc
            assert "\n" not in str(exc).replace("\\n", ""), exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_only_raise_config_error(doc):
    _load_quietly(yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
       | st.binary(max_size=200).map(bytes))
def test_random_text_only_raises_config_error(text):
    _load_quietly(text)


def test_check_web_config_command(pki, tmp_path):
    good = write(tmp_path, tls_block(pki) + f"basic_auth_users:\n  p: '{bcrypt_hash(PASSWORD)}'\n")
    bad = write(tmp_path, tls_block(pki, min_version="TLS9"), "bad.yml")
    env = {"PYTHONPATH": str(REPO / "exporter"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "livekit_agents_exporter", "check-web-config"]
    ok = subprocess.run(cmd + [str(good)], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK: TLS TLS12..TLS13" in ok.stdout and "basic auth: 1 user" in ok.stdout
    failed = subprocess.run(cmd + [str(bad)], capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip() == (f"livekit-agents-exporter check-web-config: error: {bad}: "
                                     "tls_server_config.min_version: must be one of TLS10, TLS11, "
                                     "TLS12, TLS13, got 'TLS9'")


# -- paths that are not files, secrets in parser messages, hashes that cannot work ---------------
def _special_paths(tmp_path: Path) -> dict[str, str]:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"a FIFO": str(fifo), "/dev/urandom": "/dev/urandom", "/dev/zero": "/dev/zero",
            "a directory": str(tmp_path)}


def _refused_quickly(path: Path, fragment: str) -> str:
    import time

    start = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert time.perf_counter() - start < 2, "the loader waited on a special file"
    assert fragment in str(caught.value), str(caught.value)
    return str(caught.value)


def test_special_files_as_the_web_config_are_refused_at_once(tmp_path):
    for what, path in _special_paths(tmp_path).items():
        message = _refused_quickly(Path(path), "not a regular file")
        assert message.startswith(f"{path}: cannot read the file"), (what, message)


@pytest.mark.parametrize("key", ["cert_file", "key_file", "client_ca_file"])
def test_special_files_as_certificate_key_or_ca_are_refused_at_once(pki, tmp_path, key):
    for what, special in _special_paths(tmp_path).items():
        files = {"cert_file": str(pki.server.cert), "key_file": str(pki.server.key)}
        extra = ""
        if key == "client_ca_file":
            extra = (f"  client_auth_type: RequireAndVerifyClientCert\n"
                     f"  client_ca_file: {special}\n")
        else:
            files[key] = special
        text = (f"tls_server_config:\n  cert_file: {files['cert_file']}\n"
                f"  key_file: {files['key_file']}\n{extra}")
        name = f"w-{key}-{what.replace('/', '_').replace(' ', '_')}.yml"
        _refused_quickly(write(tmp_path, text, name), f"tls_server_config.{key}: cannot read")


def test_oversized_files_are_refused_without_reading_them(tmp_path):
    big = tmp_path / "big.yml"
    with open(big, "wb") as fh:
        fh.truncate(64 << 20)  # sparse: nothing to read, but a careless reader would try
    _refused_quickly(big, "larger than")


@pytest.mark.parametrize("password", ["*hunter2-secret", "!hunter2-secret", "&hunter2-secret",
                                      "%hunter2-secret", "@hunter2-secret", "`hunter2-secret"])
def test_yaml_errors_never_repeat_what_the_file_says(tmp_path, password):
    path = write(tmp_path, f"basic_auth_users:\n  alice: {password}\n")
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert "hunter2" not in str(caught.value), str(caught.value)


def test_a_wrong_file_is_not_quoted(pki, tmp_path):
    """A key or a password list given by mistake: the message names the file, not its lines."""
    secret_lines = tmp_path / "secrets.env"
    secret_lines.write_text("DB_PASSWORD='hunter2-secret': x: y\n")
    for path in (secret_lines, pki.server.key):
        with pytest.raises(ConfigError) as caught:
            load_web_config(path)
        assert "hunter2" not in str(caught.value) and "PRIVATE" not in str(caught.value), \
            str(caught.value)


def test_bcrypt_hashes_that_cannot_authenticate_or_take_forever_are_refused(tmp_path):
    good = bcrypt_hash(PASSWORD)
    x_variant = "$2x$" + good[4:]
    with pytest.raises(ConfigError, match=r"alice: must be a bcrypt hash"):
        load_web_config(write(tmp_path, f"basic_auth_users:\n  alice: '{x_variant}'\n"))
    cost31 = good[:4] + "31" + good[6:]
    with pytest.raises(ConfigError, match=r"alice: bcrypt cost 31 is outside 4\.\.14"):
        load_web_config(write(tmp_path, f"basic_auth_users:\n  alice: '{cost31}'\n", "c.yml"))
    for prefix in ("$2a$", "$2b$", "$2y$"):
        load_web_config(write(tmp_path, f"basic_auth_users:\n  alice: '{prefix}{good[4:]}'\n",
                              "ok.yml"))
