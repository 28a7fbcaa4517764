"""The baseline: a Flask app whose callback endpoint only answers 200 (what an ack cannot beat)."""

from flask import Flask

app = Flask(__name__)


@app.post("/wecom/callback")
def callback():
    return "success"
