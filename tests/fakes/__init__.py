"""Test doubles that honour asbx's boundaries: FakeRuntime, ScriptedRunner, RecordingRunner."""

from tests.fakes.runtime import (
    Call,
    ExecCall,
    FakeContainer,
    FakeRuntime,
    RecordingRunner,
    ScriptedRunner,
)

__all__ = ["Call", "ExecCall", "FakeContainer", "FakeRuntime", "RecordingRunner",
           "ScriptedRunner"]
