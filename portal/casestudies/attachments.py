"""Check uploaded files by their content, never their name, and serve them as downloads."""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from urllib.parse import quote

from flask import Response, current_app
from werkzeug.datastructures import FileStorage

from ..models import Attachment


@dataclass(frozen=True)
class FileType:
    extension: str
    content_type: str
    label: str


PDF = FileType("pdf", "application/pdf", "PDF")
PNG = FileType("png", "image/png", "PNG image")
JPEG = FileType("jpg", "image/jpeg", "JPEG image")
DOCX = FileType(
    "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word"
)
PPTX = FileType(
    "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "PowerPoint",
)
XLSX = FileType(
    "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel"
)

#: The part every Office Open XML package of each kind must hold.
OFFICE_PARTS = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}
ACCEPTED = "PDF, PNG, JPEG, Word (DOCX), PowerPoint (PPTX) or Excel (XLSX)"


class AttachmentRefused(ValueError):
    """The file cannot be attached; the message says why, for the person uploading it."""


def sniff(data: bytes) -> FileType | None:
    """Return the type the content really is, from its magic number, or None."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04"):
        try:
            # Only the central directory is read: nothing is decompressed (no zip bombs).
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        if "[Content_Types].xml" in names:
            for part, kind in OFFICE_PARTS.items():
                if part in names:
                    return kind
    return None


def safe_filename(name: str, kind: FileType) -> str:
    """Return a display name with no path, no control characters and the real extension."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # drop any path, Windows or POSIX
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[\"'<>:|?*;]", "", stem).strip(" .")[:120] or "attachment"
    return f"{stem}.{kind.extension}"


def read_upload(upload: FileStorage, already: int) -> Attachment:
    """Return an Attachment for an uploaded file, or raise AttachmentRefused."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    most = current_app.config["ATTACHMENT_MAX_COUNT"]
    if already >= most:
        raise AttachmentRefused(
            f"{_shown(upload.filename)} was not attached: "
            f"a case study can have at most {most} attachments"
        )
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise AttachmentRefused(f"{_shown(upload.filename)} is larger than {_size(limit)}")
    if not data:
        raise AttachmentRefused(f"{_shown(upload.filename)} is empty")
    kind = sniff(data)
    if kind is None:
        raise AttachmentRefused(f"{_shown(upload.filename)} must be a {ACCEPTED} file")
    return Attachment(
        filename=safe_filename(upload.filename or "", kind),
        content_type=kind.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def read_uploads(uploads: list[FileStorage], already: int) -> tuple[list[Attachment], list[str]]:
    """Read every chosen file: return those accepted, and why each other one was refused.

    `already` is how many files the case study keeps; a file past the limit is refused by name.
    """
    accepted: list[Attachment] = []
    refused: list[str] = []
    for upload in uploads:
        if not getattr(upload, "filename", ""):
            continue  # an empty file input sends one nameless part
        try:
            accepted.append(read_upload(upload, already + len(accepted)))
        except AttachmentRefused as error:
            refused.append(str(error))
    return accepted, refused


def human_size(size: int) -> str:
    """Return a file's size as people read it: "340 bytes", "12 KB", "1.2 MB"."""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    kilobytes = round(size / 1024)
    if kilobytes < 1024:
        return f"{kilobytes} KB"
    megabytes = round(size / (1024 * 1024), 1)
    return f"{megabytes:g} MB" if megabytes < 1000 else f"{megabytes:,.0f} MB"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def _shown(name: str | None) -> str:
    cleaned = "".join(ch for ch in (name or "") if unicodedata.category(ch)[0] != "C")
    base = re.split(r"[\\/]", cleaned)[-1][:80]
    return f"The file {base!r}" if base else "The file"


def download(attachment: Attachment) -> Response:
    """Return the file as a download that no browser will render or sniff."""
    ascii_name = attachment.filename.encode("ascii", "ignore").decode() or "attachment"
    ascii_name = ascii_name.replace('"', "")
    response = Response(attachment.data, mimetype=attachment.content_type)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename)}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
