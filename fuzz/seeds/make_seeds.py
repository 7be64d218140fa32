#!/usr/bin/env python3
"""Writes the hand-made seed inputs of each fuzz target into fuzz/corpus/<target>/.

Seeds are genuine inputs in each target's format (see the header of each target): signed
webhook deliveries, signed checkpoints, canonical audit entries, the default policy bundle's
files, import lines. The committed corpus is these seeds plus what `cargo fuzz cmin` kept from
the 10-minute runs; rerunning this script only adds files.
"""
import base64, hashlib, hmac, json, os, struct, sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
ROOT = os.path.dirname(FUZZ)
NOW = 1_764_150_000


def write(target, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def header(mode, skew=0, position=0):
    return bytes([mode]) + struct.pack("<hH", skew, position)


STANDARD_BODIES = [
    b'{"type":"idv.result","timestamp":"2026-11-26T10:00:00Z","data":{"inquiry_id":"inq_1","reference_id":"case-42","status":"approved","checks":{"document":true,"selfie":true,"liveness":true},"matches":{"name_first":true,"name_last":true,"birthdate":true}}}',
    b'{"type":"idv.result","data":{"inquiry_id":"inq_1","reference_id":"case-42","status":"approved_ish"}}',
    b'{"type":"idv.result","data":{"inquiry_id":"inq_1","status":"declined","checks":{"document":false}}}',
    b'{"type":"idv.started","data":{}}',
    b'{"test": 2432232314}',
]


def persona_body(status, liveness):
    return json.dumps({"data": {"type": "event", "id": "evt_XGuYWp7WuDzNxie5z16s7sGJ", "attributes": {
        "name": "inquiry.approved", "payload": {
            "data": {"type": "inquiry", "id": "inq_2CVZ4HyVg7qaboXz2PUHknAn",
                     "attributes": {"status": status, "reference-id": "case-42", "created-at": "2019-09-09T22:40:56.000Z"},
                     "relationships": {"template": {"data": {"id": "blu_1", "type": "template"}},
                                       "verifications": {"data": [
                                           {"id": "ver_gov", "type": "verification/government-id"},
                                           {"id": "ver_selfie", "type": "verification/selfie"}]}}},
            "included": [
                {"type": "template", "id": "blu_1", "attributes": {"name": "Acme #1"}},
                {"type": "verification/government-id", "id": "ver_gov", "attributes": {
                    "status": "passed", "name-first": "Jane", "name-middle": None, "name-last": "Doe",
                    "birthdate": "1957-05-29", "checks": [
                        {"name": "id_barcode_detection", "status": "passed", "reasons": [], "metadata": {}},
                        {"name": "id_inquiry_comparison", "status": "passed", "reasons": [], "requirement": "required", "metadata": {}}]}},
                {"type": "verification/selfie", "id": "ver_selfie", "attributes": {"status": "passed", "checks": [
                    {"name": "selfie_pose_detection", "status": "passed", "reasons": [], "metadata": {}},
                    {"name": "selfie_liveness_detection", "status": liveness, "reasons": [], "metadata": {}}]}}]},
        "created-at": "2019-09-09T22:46:20.000Z"}}}, separators=(",", ":")).encode()


PERSONA_BODIES = [
    persona_body("approved", "passed"),
    persona_body("declined", "failed"),
    b'{"data":{"type":"event","id":"evt_2","attributes":{"name":"verification.passed","payload":{"data":{"type":"verification/selfie","id":"ver_1","attributes":{"status":"passed"}}}}}}',
]


def webhook_standard():
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    for i, body in enumerate(STANDARD_BODIES):
        ts = str(NOW - 10 * i).encode()
        msg_id = b"msg_%d" % i
        sig = base64.b64encode(hmac.new(key, msg_id + b"." + ts + b"." + body, hashlib.sha256).digest())
        write("webhook_standard", header(0) + b"\n".join([msg_id, ts, b"v1a,abc v1," + sig, body]))
        write("webhook_standard", header(1 + 2 * (i % 4), skew=(-1) ** i * 20 * i, position=i * 37) + body)
    write("webhook_standard", header(1, skew=301) + STANDARD_BODIES[0])


def webhook_persona():
    secret = b"wbhsec_test_0123456789abcdef"
    for i, body in enumerate(PERSONA_BODIES):
        ts = str(NOW - 10 * i).encode()
        sig = hmac.new(secret, ts + b"." + body, hashlib.sha256).hexdigest().encode()
        write("webhook_persona", header(0) + b"t=" + ts + b",v1=" + sig + b" t=1,v1=00\n" + body)
        write("webhook_persona", header(1 + 2 * (i % 4), skew=(-1) ** i * 20 * i, position=i * 41) + body)
    write("webhook_persona", header(1, skew=-301) + PERSONA_BODIES[0])


def note_signature(seed, name, text):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
    sig = key.sign(text)
    return "\u2014 %s %s\n" % (name, base64.b64encode(key_id + sig).decode())


def checkpoint():
    # Go's sumdb/note reference key, the trusted key of the target.
    seed = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
    other = bytes(range(32))
    for size, root in [(0, hashlib.sha256(b"").digest()), (5, hashlib.sha256(b"\x00root").digest()),
                       (2**64 - 1, bytes(32))]:
        text = ("PeterNeumann\n%d\n%s\n" % (size, base64.b64encode(root).decode())).encode()
        sig = note_signature(seed, "PeterNeumann", text)
        witness = note_signature(other, "witness.example", text)
        note = text + b"\n" + (witness + sig).encode()
        write("checkpoint", b"\x00" + note)
        write("checkpoint", b"\x01" + struct.pack("<Q", size) + root + b"\x10\x00A\x40\x00\xff\x60\x00\xfe")
    # A checkpoint with an extension line, and the C2SP spec's example note.
    text = b"PeterNeumann\n1\n" + base64.b64encode(bytes(32)) + b"\nextension\n"
    write("checkpoint", b"\x00" + text + b"\n" + note_signature(seed, "PeterNeumann", text).encode())
    write("checkpoint", b"\x00This is an example message.\n\n\xe2\x80\x94 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


def canonical_json():
    def entry(index, details, case_id=None):
        e = {"actor": {"auth": "passkey", "id": "agent-1", "role": "agent"}, "case_id": case_id,
             "details": details, "event": "case.opened", "evidence_digests": ["sha256:aa"],
             "index": index, "policy_digest": None, "time": "2026-11-26T09:30:00.123Z"}
        return json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    write("canonical_json", entry(0, {}))
    write("canonical_json", entry(7, {"a": {"x": None, "y": [{"a": 1, "b": 2}]}, "z": -3.5, "s": "line\n\"two\" \u00e9\u0001"}, "case-42"))
    write("canonical_json", entry(123456789, [True, False, 1e-7, 12345678901234567890, "\\"]))
    write("canonical_json", b'{"b":[1,2.5,{"c":null}],"a":"\\u0007"}')


def policy_bundle():
    base = os.path.join(ROOT, "policies", "default")
    paths = sorted(os.path.relpath(os.path.join(d, f), base).replace(os.sep, "/")
                   for d, _, fs in os.walk(base) for f in fs)
    for i, path in enumerate(paths):
        with open(os.path.join(base, path), "rb") as f:
            write("policy_bundle", bytes([i]) + f.read())
    write("policy_bundle", b'\xf0@id("fuzz")\nforbid(principal, action, resource) when { context.channel == "phone" };\n')


def import_subjects():
    nora = {"id": "u-nora", "display_name": "Nora Quist", "tier": "standard", "status": "active", "manager": None,
            "owners": [], "groups": ["idp-admins"], "contacts": [{"kind": "email", "value": "nora@example.org",
            "verified_at": "2024-01-01T00:00:00Z", "changed_at": "2024-01-01T00:00:00Z"}], "authenticators": [],
            "flagged": False, "hired_at": "2020-02-29T12:00:00Z", "utc_offset_minutes": 60,
            "identity": {"given_name": "Nora", "family_name": "Quist", "birthdate": "1990-01-31"}}
    line = json.dumps(nora).encode()
    write("import_subjects", line + b"\n")
    write("import_subjects", line + b"\n\n" + line.replace(b"u-nora", b"u-olaf") + b"\n")
    write("import_subjects", line + b'\n{"id": 3}\n')


for make in [webhook_standard, webhook_persona, checkpoint, canonical_json, policy_bundle, import_subjects]:
    if len(sys.argv) == 1 or make.__name__ in sys.argv[1:]:
        make()
