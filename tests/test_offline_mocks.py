"""The offline plan's answers to invokes reach a program through the SDK's mock monitor."""

from __future__ import annotations

import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks
from pulumi.runtime.proto import resource_pb2

from shared.settings import load_platform
from toolbox.mocks import PlatformMocks


@pytest.mark.parametrize(
    ("token", "key", "expected"),
    [
        ("aws:index/getCallerIdentity:getCallerIdentity", "accountId", "111111111111"),
        ("aws:index/getRegion:getRegion", "region", "us-east-1"),
        ("aws:index/getPartition:getPartition", "partition", "aws"),
    ],
)
def test_an_invoke_is_answered_without_check_failures(token, key, expected):
    monitor = mocks.MockMonitor(PlatformMocks(load_platform("dev"), {}))

    response = monitor.Invoke(
        resource_pb2.ResourceInvokeRequest(tok=token, args=struct_pb2.Struct())
    )

    assert list(response.failures) == []
    assert json_format.MessageToDict(getattr(response, "return"))[key] == expected
