#!/usr/bin/python3
"""SMTP sink for the gateway's relay tests (Debian's python3-aiosmtpd).

    refusing_sink.py PORT DIR [CERT KEY [implicit]]

Listens on 127.0.0.1:PORT. Recipients whose local part starts with "perm" are refused with
550, those starting with "temp" with 451; every other recipient is accepted. Each accepted
message is written as DIR/NNNN.eml, exactly the bytes received (dot-unstuffed), after
DIR/NNNN.json with the envelope: mail_from, rcpt_tos, mail_options, peer (the client's
address and port) and tls (whether the session was encrypted). With CERT and KEY (PEM files)
it offers STARTTLS; with "implicit" after them it speaks TLS from the first byte instead (like
port 465). Offers 8BITMIME and SMTPUTF8.
"""

import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("perm"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("temp"):
            return "451 4.2.0 <%s>: mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, "%04d" % self.count)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "peer": "%s:%s" % tuple(session.peer[:2]),
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK queued as %04d" % self.count


def main():
    port = int(sys.argv[1])
    directory = sys.argv[2]
    context = None
    if len(sys.argv) >= 5:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
    implicit = len(sys.argv) == 6 and sys.argv[5] == "implicit"
    os.makedirs(directory, exist_ok=True)
    handler = Handler(directory)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(
            handler,
            hostname="sink.test",
            decode_data=False,
            enable_SMTPUTF8=True,
            tls_context=None if implicit else context,
        )

    server_ssl = context if implicit else None
    loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port, ssl=server_ssl))
    loop.run_forever()


if __name__ == "__main__":
    main()
