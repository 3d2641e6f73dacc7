// The tests' SMTP server: nodemailer's smtp-server (npm) on loopback, no TLS, no auth. Each message it
// accepts is written whole (headers and body, as received) to <dir>/<n>.eml, the envelope's recipients in
// <n>.rcpt; the tests read them there. Usage: node smtp.js <port> <dir>
const fs = require("fs");
const path = require("path");
const { SMTPServer } = require("smtp-server");

const [port, dir] = process.argv.slice(2);
fs.mkdirSync(dir, { recursive: true });
let count = 0;

const server = new SMTPServer({
  authOptional: true,
  // No reverse DNS of each client (100 ms per connection here, and nothing to learn on loopback).
  disableReverseLookup: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  size: 10 * 1024 * 1024,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => {
      count += 1;
      const base = path.join(dir, String(count).padStart(6, "0"));
      const to = session.envelope.rcptTo.map((r) => r.address).join("\n");
      // The recipients first, then the message: a reader that finds the .eml finds both.
      fs.writeFileSync(`${base}.rcpt`, to);
      fs.writeFileSync(`${base}.eml.tmp`, Buffer.concat(chunks));
      fs.renameSync(`${base}.eml.tmp`, `${base}.eml`);
      callback();
    });
  },
});
server.on("error", (err) => console.error("smtp:", err.message));
server.listen(Number(port), "127.0.0.1", () => console.log(`smtp on 127.0.0.1:${port}`));
