"""What the upload step learns about an original before anything reads its content: that it
is there, of a type we read, not empty, within the size limit; its sha256; and who and what
it is about (agent, team, customer) from its sidecar, metadata and key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cscoach_pipeline.defs.ingest.context import (
    ConsultationContext,
    fields_from_key,
    merge_context,
    parse_sidecar,
    sidecar_keys,
)
from cscoach_pipeline.defs.ingest.file_types import (
    FileType,
    extension_of,
    guess_file_type,
    unsupported_reason,
)
from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.ingest.storage import ObjectNotFound, ObjectStore, StoredObject
from cscoach_pipeline.errors import ConsultationInputError, UnsupportedFileType


@dataclass(frozen=True)
class Upload:
    obj: StoredObject
    file_type: FileType
    sha256: str
    consultation_context: ConsultationContext
    context_sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def row(
        self, consultation_id: str, shown_key: str, version: int, artifacts_prefix: str
    ) -> dict[str, Any]:
        """The consultation's `consultations` row as far as the upload step knows it."""
        return {
            "consultation_id": consultation_id,
            "source_key": shown_key,
            "file_type": self.file_type.value,
            "extension": extension_of(self.obj.key),
            "content_sha256": self.sha256,
            "size_bytes": self.obj.size,
            "version": version,
            "uploaded_at": self.obj.modified,
            **self.consultation_context.model_dump(),
            "context_sources": self.context_sources,
            "artifacts_prefix": artifacts_prefix,
        }

    def metadata(self, shown_key: str, version: int) -> dict[str, Any]:
        return {
            "source_key": shown_key,
            "size_bytes": self.obj.size,
            "content_sha256": self.sha256,
            "file_type": self.file_type.value,
            "version": version,
            "uploaded_at": self.obj.modified.isoformat(),
            **{
                name: str(value)
                for name, value in self.consultation_context.model_dump().items()
                if value is not None
            },
            "context_warnings": "; ".join(self.warnings),
        }


def inspect_upload(
    store: ObjectStore, source_key: str, *, max_file_bytes: int, key_pattern: str
) -> Upload:
    """Check the original and describe it; a file we cannot process raises
    ConsultationInputError with the reason users see."""
    try:
        obj = store.stat(source_key)
    except ObjectNotFound as exc:
        raise ConsultationInputError(
            "the file was removed from the bucket before it could be processed"
        ) from exc
    file_type = guess_file_type(obj.key)
    if file_type is None:
        raise UnsupportedFileType(unsupported_reason(obj.key))
    if obj.size == 0:
        raise ConsultationInputError("empty file (0 bytes)")
    if obj.size > max_file_bytes:
        raise ConsultationInputError(
            f"file is {_mb(obj.size)}, above the {_mb(max_file_bytes)} limit (CSCOACH_MAX_FILE_MB)"
        )
    sha256 = store.sha256(obj.key)
    context, sources, warnings = gather_context(store, obj, key_pattern)
    return Upload(obj, file_type, sha256, context, sources, warnings)


def gather_context(
    store: ObjectStore, obj: StoredObject, key_pattern: str
) -> tuple[ConsultationContext, dict[str, str], list[str]]:
    """Agent/team/customer fields from the sidecar, the object's metadata and the key."""
    warnings: list[str] = []
    sidecar: dict[str, Any] = {}
    for sidecar_key in sidecar_keys(obj.key):
        data = store.read_optional(sidecar_key)
        if data is None:
            continue
        try:
            sidecar = parse_sidecar(data)
        except ValueError as exc:
            warnings.append(f"ignored sidecar {display_key(sidecar_key)}: {exc}")
        break
    context, sources, merge_warnings = merge_context(
        sidecar=sidecar,
        object_metadata=obj.metadata,
        from_key=fields_from_key(obj.key, key_pattern),
    )
    return context, sources, warnings + merge_warnings


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"
