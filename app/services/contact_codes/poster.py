"""A printable poster for a code: its title, channel label, the QR and, for a single-rep code,
the rep's name. Chinese needs a CJK font: the first one found on the system is used
(fonts-noto-cjk or fonts-wqy-zenhei on Debian/Ubuntu); without one the poster is still drawn,
with Pillow's default font (Latin text stays readable, CJK glyphs do not)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import qrcode
import requests
from flask import current_app
from PIL import Image, ImageDraw, ImageFont

from app.errors import ApiError
from app.models import CodeMode, ContactCode

# Where distributions put CJK fonts; the app setting CONTACT_CODE_POSTER_FONTS replaces the list.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
FONT_SETTING = "CONTACT_CODE_POSTER_FONTS"

WIDTH, HEIGHT = 900, 1300
BAND = 220
QR_SIZE = 620
GREEN, GREY, DARK, WHITE = (7, 193, 96), (110, 110, 110), (34, 34, 34), (255, 255, 255)


@dataclass
class Poster:
    png: bytes
    font: str  # the font file used, or "default"


def find_font() -> str | None:
    """The first CJK font file present, or None."""
    candidates = current_app.config.get(FONT_SETTING, FONT_CANDIDATES)
    return next((path for path in candidates if os.path.isfile(path)), None)


def _font(path: str | None, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, max_lines: int) -> list[str]:
    """Break ``text`` (CJK has no spaces) into lines no wider than ``width``, character by character."""
    lines, line = [], ""
    for char in text:
        if draw.textlength(line + char, font=font) > width and line:
            lines.append(line)
            line = char
        else:
            line += char
    lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font, fill) -> int:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((WIDTH - (right - left)) / 2 - left, y - top), text, font=font, fill=fill)
    return y + (bottom - top)


def _qr(code: ContactCode, landing_url: str) -> Image.Image:
    if code.mode == CodeMode.routed:
        # The landing link picks the rep at scan time.
        return qrcode.make(landing_url, border=2).get_image().convert("RGB")
    # wecom mode: WeCom's own QR picture of the contact way.
    try:
        response = requests.get(code.qr_code, timeout=5)
        response.raise_for_status()
        return Image.open(io.BytesIO(response.content)).convert("RGB")
    except (requests.RequestException, OSError) as exc:
        raise ApiError(502, "qr_unavailable", "could not fetch the contact way's QR picture from WeCom") from exc


def render(code: ContactCode, landing_url: str) -> Poster:
    """Draw the poster of ``code`` as a PNG."""
    font_path = find_font()
    image = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, BAND), fill=GREEN)
    title_font = _font(font_path, 56)
    lines = _wrap(draw, code.name, title_font, WIDTH - 100, 2)
    y = (BAND - 70 * len(lines)) // 2 + 8
    for line in lines:
        _centered(draw, y, line, title_font, WHITE)
        y += 70
    _centered(draw, BAND + 40, f"渠道 · {code.channel}", _font(font_path, 34), GREY)
    qr = _qr(code, landing_url).resize((QR_SIZE, QR_SIZE), Image.Resampling.NEAREST)
    qr_top = BAND + 110
    image.paste(qr, ((WIDTH - QR_SIZE) // 2, qr_top))
    y = qr_top + QR_SIZE + 40
    pool = [m for m in code.members if not m.backup]
    if len(pool) == 1:
        rep = pool[0].staff
        y = _centered(draw, y, f"顾问：{rep.name or rep.userid}", _font(font_path, 40), DARK) + 30
    _centered(draw, max(y, HEIGHT - 120), "微信扫一扫，添加专属顾问", _font(font_path, 30), GREY)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return Poster(buffer.getvalue(), os.path.basename(font_path) if font_path else "default")
