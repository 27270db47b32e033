"""Uploaded images (transfer proofs, QRIS codes): checked by what they are, not what they are
called, and re-encoded before they are stored or shown.

Re-encoding to PNG keeps only pixels: no EXIF (a phone photo's location), no trailing bytes, no
polyglot that a browser might sniff as HTML. Pillow's decompression-bomb guard is made strict
with a pixel budget of our own.
"""

from __future__ import annotations

import io
import warnings

from flask_babel import lazy_gettext as _l
from PIL import Image, UnidentifiedImageError

from app.errors import ValidationError

MAX_PROOF_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
PNG_TYPE = "image/png"


def reencode_image(data: bytes, field: str = "proof") -> bytes:
    """The image in `data` as a fresh PNG, or a ValidationError saying why it is refused."""
    if not data:
        raise ValidationError(_l("The file is empty"), field)
    if len(data) > MAX_PROOF_BYTES:
        raise ValidationError(
            _l("The image is larger than %(mib)s MiB", mib=MAX_PROOF_BYTES // (1024 * 1024)), field
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ACCEPTED_FORMATS:
                    raise ValidationError(_l("Upload a PNG, JPEG or WebP image"), field)
                if probe.width * probe.height > MAX_PIXELS:
                    raise ValidationError(_l("The image has too many pixels"), field)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.seek(0)  # the first frame of an animation
                pixels = image.convert("RGBA" if _has_alpha(image) else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):  # fmt: skip
        raise ValidationError(_l("Upload a PNG, JPEG or WebP image"), field) from None
    out = io.BytesIO()
    pixels.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
