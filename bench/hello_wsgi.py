"""A bare Flask "hello world": the baseline that ``bench/load.py`` serves under the same
gunicorn setting as the portal (``gunicorn --chdir bench hello_wsgi:app``), so the portal's
throughput can be read as a share of what the server, the machine and the client manage
with no application work at all."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
