"""The printable poster: PNG with a CJK font when one is installed, Pillow's default otherwise."""

import io

import pytest
from PIL import Image, ImageChops, ImageDraw

from app.services.contact_codes import poster


def _png(resp) -> Image.Image:
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    image = Image.open(io.BytesIO(resp.data))
    assert image.format == "PNG" and image.size == (poster.WIDTH, poster.HEIGHT)
    return image


def _glyph(font, char: str) -> Image.Image:
    image = Image.new("L", (80, 80), 0)
    ImageDraw.Draw(image).text((5, 5), char, font=font, fill=255)
    return image


def test_poster_uses_a_cjk_font(world, create_code, client, admin_headers, app):
    """With a CJK font installed, is the poster drawn with it (distinct Chinese glyphs, not boxes)?"""
    path = poster.find_font()
    if path is None:
        pytest.skip("no CJK font on this machine (apt-get install fonts-wqy-zenhei)")
    code = create_code(name="展会 2026 扫码有礼", members=[{"userid": "zhangwei"}])
    resp = client.get(f"/api/v1/contact-codes/{code['id']}/poster.png", headers=admin_headers)
    _png(resp)
    assert resp.headers["X-Poster-Font"] == path.rsplit("/", 1)[-1]
    font = poster._font(path, 40)
    assert ImageChops.difference(_glyph(font, "渠"), _glyph(font, "道")).getbbox() is not None


def test_poster_falls_back_to_the_default_font(world, create_code, client, admin_headers, app):
    """Without any CJK font, is the poster still drawn, with Pillow's default font?"""
    app.config[poster.FONT_SETTING] = ["/nonexistent/font.ttc"]
    code = create_code(mode="routed", name="Expo booth")
    resp = client.get(f"/api/v1/contact-codes/{code['id']}/poster.png", headers=admin_headers)
    image = _png(resp)
    assert resp.headers["X-Poster-Font"] == "default"
    assert image.convert("L").getextrema() == (0, 255)  # something was drawn on the white page


def test_wecom_poster_carries_wecoms_qr(world, create_code, client, admin_headers, sim):
    """Does a wecom-mode poster paste WeCom's own QR picture (fetched from the way's qr_code)?"""
    code = create_code()
    before = sim.control.state("api_calls")["api_calls"]
    image = _png(client.get(f"/api/v1/contact-codes/{code['id']}/poster.png", headers=admin_headers))
    qr_area = image.crop(
        (
            (poster.WIDTH - poster.QR_SIZE) // 2,
            poster.BAND + 110,
            (poster.WIDTH + poster.QR_SIZE) // 2,
            poster.BAND + 110 + poster.QR_SIZE,
        )
    ).convert("L")
    assert qr_area.getextrema() == (0, 255)
    assert sim.control.state("api_calls")["api_calls"] == before  # a picture fetch, not an API call


def test_poster_of_an_unreachable_qr_is_502(world, create_code, client, admin_headers, db):
    """When WeCom's QR picture cannot be fetched, is the answer a clean 502?"""
    from app.models import ContactCode

    code = create_code()
    db.session.get(ContactCode, code["id"]).qr_code = "http://127.0.0.1:9/qr.png"
    db.session.commit()
    resp = client.get(f"/api/v1/contact-codes/{code['id']}/poster.png", headers=admin_headers)
    assert resp.status_code == 502 and resp.json["error"]["code"] == "qr_unavailable"


def test_poster_needs_a_token(world, create_code, client):
    """Is the poster refused without a bearer token?"""
    code = create_code()
    assert client.get(f"/api/v1/contact-codes/{code['id']}/poster.png").status_code == 401
