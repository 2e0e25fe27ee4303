"""Message.from_any / to_dict: the three accepted input forms and the emitted shape."""

from elasticio_sailor import Message


def test_from_any_keeps_a_message():
    m = Message(data={"a": 1})
    assert Message.from_any(m) is m


def test_from_any_message_dict_takes_every_field():
    m = Message.from_any(
        {
            "data": {"a": 1},
            "metadata": {"m": 1},
            "attachments": {"f": {}},
            "headers": {"h": "v"},
            "id": "i1",
            "passthrough": {"s": {}},
        }
    )
    assert (m.data, m.metadata, m.attachments, m.headers, m.id, m.passthrough) == (
        {"a": 1},
        {"m": 1},
        {"f": {}},
        {"h": "v"},
        "i1",
        {"s": {}},
    )


def test_from_any_bare_dict_is_the_data():
    m = Message.from_any({"email": "a@b.c", "metadata": "not a message"})
    assert m.data == {"email": "a@b.c", "metadata": "not a message"}
    assert m.metadata == {}


def test_from_any_none_is_empty():
    assert Message.from_any(None) == Message()


def test_to_dict_omits_unset_optional_fields():
    assert Message(data={"x": 1}).to_dict() == {"data": {"x": 1}, "metadata": {}, "attachments": {}}
    full = Message(data=1, id="i", headers={"a": 1}, passthrough={"p": 1}).to_dict()
    assert list(full) == ["data", "metadata", "attachments", "id", "headers", "passthrough"]


def test_round_trip():
    d = {"data": {"a": [1, 2]}, "metadata": {"recordUid": "r"}, "attachments": {}, "id": "x"}
    assert Message.from_any(d).to_dict() == d
