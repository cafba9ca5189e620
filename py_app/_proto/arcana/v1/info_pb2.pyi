# Generated from protos/ by tools/gen_proto.py. Do not edit.
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("version", "rust_core_version", "pid")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUST_CORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    version: str
    rust_core_version: str
    pid: int
    def __init__(self, version: _Optional[str] = ..., rust_core_version: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...
