/** Standard Webhooks signatures: v1,<base64 HMAC-SHA256 over "id.timestamp.body">, keyed with the bytes after whsec_. */
/** The key a whsec_ secret names, or null when it does not decode to the 24 bytes Standard Webhooks asks for. */
export function webhookKey(secret: string): Uint8Array | null {
  try {
    const bytes = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
    return bytes.length >= 24 ? bytes : null;
  } catch {
    return null;
  }
}

export async function signWebhook(secret: string, id: string, timestampS: number, body: string): Promise<string> {
  const keyBytes = webhookKey(secret);
  if (!keyBytes) throw new Error("the webhook secret is not a whsec_<base64> secret of at least 24 bytes");
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampS}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}
