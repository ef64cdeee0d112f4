"""Entities: who or what a feature describes, and the key it joins on."""

from __future__ import annotations

from feast import Entity
from feast.value_type import ValueType

contact = Entity(
    name="contact",
    join_keys=["contact_id"],
    value_type=ValueType.STRING,
    description="A known person (lead or customer), identified by the journey engine's contact id.",
)
account = Entity(
    name="account",
    join_keys=["account_id"],
    value_type=ValueType.STRING,
    description="A company; account-based views sum engagement over its contacts.",
)
content = Entity(
    name="content",
    join_keys=["content_id"],
    value_type=ValueType.STRING,
    description="A content block a nurture program can send.",
)
