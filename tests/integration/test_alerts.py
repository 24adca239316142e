"""Failure and drift alerts from a real Airflow run: to the task log always, and as a real
email through Airflow's SmtpNotifier to a small SMTP server started here when configured."""

from __future__ import annotations

import base64
import email
import socketserver
import textwrap
import threading
from email import policy

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

LEAKED_PASSWORD = "hunter2-secret"
SMTP_PASSWORD = "smtp-pass-987"

PROBE_DAG = textwrap.dedent(f'''
    """Fails one task and reports drift from another, to exercise the alert channels."""
    import pendulum
    from airflow.sdk import dag, get_current_context, task

    from migration_engine.alerts import notify_drift, notify_failure


    @dag(dag_id="alerts_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         params={{"table": "issuer.credentials"}},
         default_args={{"retries": 0, "on_failure_callback": notify_failure}})
    def alerts_probe():
        @task
        def report_drift():
            notify_drift(get_current_context(), table="wallet.users", drifted_rows=3, detail="keys 7, 8, 9")

        @task
        def copy_chunk():
            raise RuntimeError("copy failed on postgresql://migrator:{LEAKED_PASSWORD}@db.internal:5432/postgres_target")

        report_drift() >> copy_chunk()


    alerts_probe()
''')


class SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        envelope = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-localhost")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                self.server.logins.append(base64.b64decode(command.split()[2]).split(b"\0")[1:])
                self.reply("235 authenticated")
            elif verb == "MAIL":
                envelope["from"] = command
                self.reply("250 ok")
            elif verb == "RCPT":
                envelope["to"].append(command.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                body = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    body += chunk
                self.server.messages.append((envelope, email.message_from_bytes(body, policy=policy.default)))
                envelope = {"to": []}
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpSession)
    server.daemon_threads = True
    server.messages, server.logins = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def probe_dags(tmp_path_factory):
    folder = tmp_path_factory.mktemp("alert_dags")
    (folder / "alerts_probe.py").write_text(PROBE_DAG)
    return folder


def run_probe(airflow_home, probe_dags, **env):
    result = airflow_home.run_dag("alerts_probe", extra_env={"AIRFLOW__CORE__DAGS_FOLDER": str(probe_dags), **env})
    assert result.state_of("report_drift") == "success", result.output[-3000:]
    assert result.state_of("copy_chunk") == "failed", result.output[-3000:]
    return result


def test_without_a_channel_alerts_go_to_the_task_log(airflow_home, probe_dags):
    result = run_probe(airflow_home, probe_dags, ALERT_EMAIL_TO="")
    drift = next(line for line in result.output.splitlines() if "migration drift:" in line)
    assert "DAG: alerts_probe; Task: report_drift; Table: wallet.users" in drift
    assert "3 drifted row(s); keys 7, 8, 9" in drift
    failure = next(line for line in result.output.splitlines() if "migration failure:" in line)
    assert "DAG: alerts_probe; Task: copy_chunk; Table: issuer.credentials" in failure
    assert "RuntimeError: copy failed on postgresql://migrator:***@db.internal" in failure
    assert "Link: http" in failure and "/dags/alerts_probe/runs/" in failure
    # Airflow's own traceback shows the raw exception; the alert carries it redacted.
    assert LEAKED_PASSWORD not in drift + failure


def test_smtp_channel_sends_a_real_email(airflow_home, probe_dags, smtp_server):
    port = smtp_server.server_address[1]
    run_probe(
        airflow_home, probe_dags,
        ALERT_EMAIL_TO="oncall@example.com, dba@example.com",
        ALERT_EMAIL_FROM="migration@example.com",
        AIRFLOW_CONN_SMTP_DEFAULT=f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{port}/?disable_ssl=true&disable_tls=true",
    )
    assert smtp_server.logins and smtp_server.logins[0] == [b"alerts", SMTP_PASSWORD.encode()]
    by_subject = {message["Subject"]: (envelope, message) for envelope, message in smtp_server.messages}
    assert set(by_subject) == {"[migration drift] alerts_probe: wallet.users",
                               "[migration failure] alerts_probe: issuer.credentials"}
    envelope, failure = by_subject["[migration failure] alerts_probe: issuer.credentials"]
    assert envelope["to"] == ["oncall@example.com", "dba@example.com"]
    assert failure["From"] == "migration@example.com"
    body = next(part for part in failure.walk() if part.get_content_type() == "text/html").get_content()
    for expected in ("alerts_probe", "copy_chunk", "issuer.credentials", "RuntimeError: copy failed on postgresql://migrator:***@",
                     "/dags/alerts_probe/runs/"):
        assert expected in body
    raw = "".join(str(message) for _, message in smtp_server.messages)
    assert LEAKED_PASSWORD not in raw and SMTP_PASSWORD not in raw


def test_a_failing_channel_is_logged_and_the_alert_still_reaches_the_log(airflow_home, probe_dags):
    closed = socketserver.TCPServer(("127.0.0.1", 0), SmtpSession)
    port = closed.server_address[1]
    closed.server_close()
    result = run_probe(
        airflow_home, probe_dags,
        ALERT_EMAIL_TO="oncall@example.com", ALERT_EMAIL_FROM="migration@example.com",
        AIRFLOW_CONN_SMTP_DEFAULT=f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{port}/?disable_ssl=true&disable_tls=true",
    )
    assert "migration failure: DAG: alerts_probe; Task: copy_chunk" in result.output
    assert "alert email through connection smtp_default failed: ConnectionRefusedError" in result.output
    assert SMTP_PASSWORD not in result.output
