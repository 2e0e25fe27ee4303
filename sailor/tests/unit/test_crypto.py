"""Encryption byte-compatible with Node (all shared vectors), lenient base64, JSON.stringify numbers."""

import base64
import json
import math
from pathlib import Path

import pytest
from elasticio_sailor import Message
from elasticio_sailor.crypto import CryptoError, MessageCipher, node_b64decode
from elasticio_sailor.js import js_json_dumps, js_number_text

SHARED = Path(__file__).resolve().parents[3].parent / "shared"  # beside the repository, never committed
VECTORS_FILE = SHARED / "docs" / "encryption-vectors.json"
VECTORS = json.loads(VECTORS_FILE.read_text()) if VECTORS_FILE.exists() else None
# A vector checked against both Node runtimes, kept here so the test runs without ../shared.
DOC_VECTOR = {
    "password": "testCryptoPassword",
    "iv": "iv=any16_symbols",
    "plaintext_json": '{"body":{"hello":"wörld"},"headers":{}}',
    "protocol_v1_body_base64": "axyl/YcFb4wgFzIyJ9McA8V2drLABZECBETE19+MI4vZqmhhF23nnq/0onn41iKj",
    "protocol_v2_body_hex": "6b1ca5fd87056f8c2017323227d31c03c57676b2c00591020444c4d7df8c238b"
    "d9aa6861176de79eaff4a279f8d622a3",
}
ALL_VECTORS = [DOC_VECTOR, *(VECTORS["vectors"] if VECTORS else [])]


def test_shared_vectors_are_present():
    assert VECTORS is not None and len(VECTORS["vectors"]) >= 4


@pytest.mark.parametrize("v", ALL_VECTORS, ids=lambda v: v["plaintext_json"][:30])
def test_vector_decrypts_and_re_encrypts_byte_for_byte(v):
    cipher = MessageCipher(v["password"], v["iv"])
    v1, v2 = v["protocol_v1_body_base64"].encode(), bytes.fromhex(v["protocol_v2_body_hex"])
    obj = cipher.decrypt(v1, 1)
    assert obj == json.loads(v["plaintext_json"])
    assert cipher.decrypt(v2, 2) == obj
    assert js_json_dumps(obj) == v["plaintext_json"]
    assert cipher.encrypt(obj, 1) == v1
    assert cipher.encrypt(obj, 2) == v2
    assert cipher.encrypt(obj, None) == v1  # no protocolVersion header = version 1
    assert cipher.encrypt_str(obj) == v["protocol_v1_body_base64"]
    assert cipher.decrypt_str(v["protocol_v1_body_base64"]) == obj


def test_key_is_sha256_of_password():
    import hashlib

    assert (
        hashlib.sha256(b"testCryptoPassword").hexdigest()
        == "199c41243a183f4696aad0fbe4cf44490111bf9f73767aaa31016a9b6a1ec0d2"
    )
    assert MessageCipher("testCryptoPassword", "iv=any16_symbols")._key.hex().startswith("199c4124")


def test_no_password_elasticio_behaviour():
    cipher = MessageCipher()
    obj = {"body": {"hello": "wörld"}, "headers": {}}
    expected = (VECTORS or {}).get("no_password", [{}])[0].get(
        "protocol_v1_body_base64"
    ) or "eyJib2R5Ijp7ImhlbGxvIjoid8O2cmxkIn0sImhlYWRlcnMiOnt9fQ=="
    assert cipher.encrypt(obj, 1) == expected.encode()
    assert cipher.encrypt(obj, 2) == json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    assert cipher.decrypt(expected.encode(), 1) == obj
    assert cipher.decrypt(b'{"body":{}}', 1) == {"body": {}}  # raw JSON labelled v1 also read
    assert cipher.decrypt(b'{"body":{}}', 2) == {"body": {}}


def test_no_password_legacy_oih_behaviour():
    cipher = MessageCipher(legacy_plaintext=True)
    obj = {"data": {"a": "ü"}}
    assert cipher.encrypt(obj, 1) == cipher.encrypt(obj, 2) == '{"data":{"a":"ü"}}'.encode()
    assert cipher.decrypt('{"data":{"a":"ü"}}'.encode(), 1) == obj
    assert cipher.decrypt(base64.b64encode(b'{"x":1}'), 1) == {"x": 1}  # from an elastic.io sender
    assert cipher.encrypt_str(obj) == '{"data":{"a":"ü"}}'


def test_lenient_base64_like_node():
    v = DOC_VECTOR["protocol_v1_body_base64"]
    cipher = MessageCipher(DOC_VECTOR["password"], DOC_VECTOR["iv"])
    expected = json.loads(DOC_VECTOR["plaintext_json"])
    junk = v[:10] + "\n \t*" + v[10:30] + "\r\n" + v[30:]
    assert cipher.decrypt(junk.encode(), 1) == expected
    unpadded = base64.b64encode(cipher.encrypt_bytes(b'{"a":1}')).rstrip(b"=")
    assert unpadded != base64.b64encode(cipher.encrypt_bytes(b'{"a":1}'))
    assert cipher.decrypt(unpadded, 1) == {"a": 1}


# Buffer.from(text, "base64").toString("hex") in Node 20.
@pytest.mark.parametrize(
    ("text", "hex_"),
    [
        ("aGk=ignored", "6869"),
        ("aGkx!", "686931"),
        ("aGk", "6869"),
        ("a-_w", "6beff0"),
        ("YQ==YQ==", "61"),
        ("aGk x\nMQ", "68693131"),
        ("Y", ""),
        ("YW=Jj", "61"),
        ("aGVsbG8", "68656c6c6f"),
    ],
)
def test_node_b64decode_matches_node(text, hex_):
    assert node_b64decode(text).hex() == hex_
    assert node_b64decode(text.encode()).hex() == hex_


@pytest.mark.parametrize("body", [b"", b"not base64 at all!!", b"AAAA", b"\x00\x01garbage"])
def test_undecryptable_bodies_raise_crypto_error(body):
    cipher = MessageCipher("pw", "0123456789abcdef")
    for version in (1, 2):
        with pytest.raises(CryptoError):
            cipher.decrypt(body, version)


def test_wrong_password_is_a_crypto_error():
    body = MessageCipher("right", "0123456789abcdef").encrypt({"a": 1}, 2)
    with pytest.raises(CryptoError):
        MessageCipher("wrong", "0123456789abcdef").decrypt(body, 2)


def test_garbage_without_password_is_a_crypto_error():
    for legacy in (False, True):
        with pytest.raises(CryptoError):
            MessageCipher(legacy_plaintext=legacy).decrypt(b"{broken", 1)


def test_iv_must_be_16_utf8_bytes_and_required_with_password():
    with pytest.raises(ValueError, match="16 bytes"):
        MessageCipher("pw", "short")
    with pytest.raises(ValueError, match="16 bytes"):
        MessageCipher("pw", "ü" * 15)  # 15 characters, 30 bytes
    with pytest.raises(ValueError, match="IV is required"):
        MessageCipher("pw", None)
    assert MessageCipher(None, "whatever").encrypting is False


def test_protocol_version_may_be_a_string_header():
    cipher = MessageCipher("pw", "0123456789abcdef")
    assert cipher.decrypt(cipher.encrypt({"a": 1}, 2), "2") == {"a": 1}
    assert cipher.encrypt({"a": 1}, "1") == cipher.encrypt({"a": 1}, 1)


# JSON.stringify; the expected texts were produced by Node 20's JSON.stringify.
NUMBERS = [
    (1.0, "1"),
    (1e21, "1e+21"),
    (1e-7, "1e-7"),
    (0.000001, "0.000001"),
    (123456789012345680000.0, "123456789012345680000"),
    (1.5, "1.5"),
    (-0.0, "0"),
    (math.nan, "null"),
    (math.inf, "null"),
    (-math.inf, "null"),
    (1e300, "1e+300"),
    (0.1 + 0.2, "0.30000000000000004"),
    (5e-324, "5e-324"),
    (1.5e-7, "1.5e-7"),
    (100.0, "100"),
    (1e20, "100000000000000000000"),
    (123e-20, "1.23e-18"),
    (-2.5e-10, "-2.5e-10"),
    (4.35, "4.35"),
    (0.00001234, "0.00001234"),
    (2.0**53, "9007199254740992"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (7, "7"),
    (True, "true"),
]


@pytest.mark.parametrize(("value", "text"), NUMBERS)
def test_js_number_format(value, text):
    assert js_number_text(value) == text
    assert js_json_dumps([value]) == f"[{text}]"


def test_js_json_strings_keys_and_structure():
    obj = {"a": 'ü\u001f\n\t\b\f\u007f\u2028"\\/', "b": "\ud800x", "c": [{"d": None}], 1: (1, 2.5)}
    assert (
        js_json_dumps(obj) == '{"a":"ü\\u001f\\n\\t\\b\\f\u007f\u2028\\"\\\\/","b":"\\ud800x",'
        '"c":[{"d":null}],"1":[1,2.5]}'
    )
    # same text through the fast path (no floats) and the slow path (a float elsewhere)
    assert js_json_dumps({"s": "\ud800", "n": 1}) == '{"s":"\\ud800","n":1}'
    assert js_json_dumps({"s": "\ud800", "n": 1.0}) == '{"s":"\\ud800","n":1}'
    assert js_json_dumps({"z": 1, "a": 2}) == '{"z":1,"a":2}'  # insertion order


def test_js_json_objects():
    assert js_json_dumps(Message(data={"x": 1.0})) == '{"data":{"x":1},"metadata":{},"attachments":{}}'
    assert js_json_dumps({"m": Message(data=1)}) == '{"m":{"data":1,"metadata":{},"attachments":{}}}'
    with pytest.raises(TypeError, match="set"):
        js_json_dumps({"s": {1}})
    with pytest.raises(TypeError, match="set"):
        js_json_dumps({"s": {1}, "f": 0.5})
    assert js_json_dumps({"s": {1}, "f": 0.5}, default=sorted) == '{"s":[1],"f":0.5}'
