"""``brook configs --entity-type users``: SCRAM credentials as kafka-configs.sh handles them with
``--bootstrap-server`` (ConfigCommand.alterUserScramCredentialConfigs and
describeClientQuotaAndUserScramCredentialConfigs): AlterUserScramCredentials with a salt and the
salted password computed here (the password never leaves this process), and
DescribeUserScramCredentials."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from broker.cli.client import CliError, KafkaClient, KafkaError
from broker.security.scram import MECHANISM_NAMES, MECHANISM_TYPES, MECHANISMS, salted_password
from protocol.error_codes import ErrorCode
from protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
    ScramCredentialUpsertion,
)
from protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
    UserName,
)

DEFAULT_ITERATIONS = 4096
#: ConfigCommand's split: commas outside square brackets.
_OUTSIDE_BRACKETS = r"(?=[^\]]*(?:\[|$))"
_CREDENTIAL = re.compile(r"(?:iterations=(-?[0-9]*),)?password=(.*)", re.DOTALL)


def parse_add_config(entries: Sequence[str]) -> dict[str, str]:
    """``--add-config`` as ConfigCommand.parseConfigsToBeAdded: ``k=v`` pairs split on commas
    outside ``[...]``, brackets removed from the values."""
    props: dict[str, str] = {}
    for entry in entries:
        for pair in re.split("," + _OUTSIDE_BRACKETS, entry):
            parts = re.split(r"\s*=\s*" + _OUTSIDE_BRACKETS, pair)
            if len(parts) != 2:
                raise CliError(
                    'Invalid entity config: all configs to be added must be in the format "key=val".'
                )
            props[parts[0].strip()] = re.sub(r"\[?\]?", "", parts[1]).strip()
    return props


def is_scram(name: str) -> bool:
    return name in MECHANISMS


def _upsertion(user: str, mechanism: str, text: str) -> ScramCredentialUpsertion:
    match = _CREDENTIAL.fullmatch(text)
    if match is None:
        # Never echo the value: it holds the password.
        raise CliError(f"Invalid credential property {mechanism}=[hidden]")
    iterations_text, password = match.groups()
    iterations = int(iterations_text) if iterations_text not in (None, "", "-1") else DEFAULT_ITERATIONS
    minimum = MECHANISMS[mechanism][1]
    if iterations < minimum:
        raise CliError(f"Iterations {iterations} is less than the minimum {minimum} required for {mechanism}")
    salt = os.urandom(32)
    return ScramCredentialUpsertion(
        user,
        MECHANISM_TYPES[mechanism],
        iterations,
        salt,
        salted_password(mechanism, password, salt, iterations),
    )


def alter(client: KafkaClient, user: str, to_add: dict[str, str], to_delete: Sequence[str]) -> None:
    if not user:
        raise CliError(
            "The use of --entity-default or --user-defaults is not allowed with User SCRAM Credentials "
            "using --bootstrap-server."
        )
    request = AlterUserScramCredentialsRequest(
        deletions=[ScramCredentialDeletion(user, MECHANISM_TYPES[m]) for m in to_delete],
        upsertions=[_upsertion(user, m, v) for m, v in to_add.items()],
    )
    # In a ZooKeeper-mode cluster only the controller answers it (Kafka's admin client too).
    response = client.controller().call(request)
    for result in response.results:
        if result.error_code:
            raise KafkaError(result.error_code, result.error_message)
    print(f"Completed updating config for user {user}.")


def describe(client: KafkaClient, user: str | None) -> None:
    users = None if not user else [UserName(user)]
    response = client.any.call(DescribeUserScramCredentialsRequest(users))
    if response.error_code:
        raise KafkaError(response.error_code, response.error_message)
    for result in response.results:
        if result.error_code == ErrorCode.RESOURCE_NOT_FOUND:
            continue  # Kafka's DescribeUserScramCredentialsResult.users() leaves these out
        if result.error_code:
            known = result.error_code in ErrorCode._value2member_map_
            name = ErrorCode(result.error_code).name if known else f"error {result.error_code}"
            print(
                f"Error retrieving SCRAM credential configs for user-principal '{result.user}': "
                f"{name}: {result.error_message}"
            )
            continue
        text = ", ".join(
            f"{MECHANISM_NAMES.get(info.mechanism, 'UNKNOWN')}=iterations={info.iterations}"
            for info in result.credential_infos
        )
        print(f"SCRAM credential configs for user-principal '{result.user}' are {text}")
