// The two node:crypto APIs the webhook test uses to check signatures independently of WebCrypto
// (workerd provides them with nodejs_compat; the Worker's types do not declare them).
declare module "node:crypto" {
  export function createHmac(algorithm: string, key: Uint8Array): { update(data: string): { digest(encoding: "base64"): string } };
}
declare const Buffer: { from(data: string, encoding: "base64"): Uint8Array };
