// Verify signed postbacks with the Standard Webhooks reference library
// (npm package "standardwebhooks", installed by test_signing.py): one JSON
// object a line on standard input, {secret, id, timestamp, signature,
// body}; one line out for each, "ok" or "fail <why>".
import { Webhook } from "standardwebhooks";
import { createInterface } from "node:readline";

for await (const line of createInterface({ input: process.stdin })) {
  const m = JSON.parse(line);
  try {
    new Webhook(m.secret).verify(m.body, {
      "webhook-id": m.id,
      "webhook-timestamp": m.timestamp,
      "webhook-signature": m.signature,
    });
    console.log("ok");
  } catch (e) {
    console.log("fail " + String(e.message || e).replace(/\n/g, " "));
  }
}
