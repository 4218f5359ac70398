/**
 * A small QMP client: one persistent connection (a QMP socket serves one client at a time and
 * does not queue events for absent clients), capabilities negotiated with out-of-band execution,
 * commands matched to replies by id, every command bounded by a timeout, events delivered to
 * subscribers while replies interleave, and reconnection with capped backoff when QEMU restarts.
 * No maintained QMP client exists on npm.
 */
import { type Socket, createConnection } from "node:net";

export type QmpAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

export function parseQmpAddress(s: string): QmpAddress | null {
  if (s.startsWith("unix:")) return s.length > 5 ? { kind: "unix", path: s.slice(5) } : null;
  const m = /^tcp:(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  if (m) return { kind: "tcp", host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  return null;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  /** QEMU's own timestamp (host realtime clock). */
  timestamp: { seconds: number; microseconds: number };
}

export type QmpErrorCode = "timeout" | "disconnected" | "not_connected" | "command_failed" | "hmp_failed" | "protocol";

/** A QMP failure: a typed code, and QEMU's own error class and text when it gave one. */
export class QmpError extends Error {
  constructor(
    readonly code: QmpErrorCode,
    message: string,
    readonly qmpClass?: string,
  ) {
    super(message);
    this.name = "QmpError";
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: QmpError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface QmpClientOptions {
  /** Default bound on every command. */
  timeoutMs?: number;
  /** Reconnect backoff: doubles from min to max. */
  backoff?: { minMs: number; maxMs: number };
}

export class QmpClient {
  readonly #address: QmpAddress;
  readonly #timeoutMs: number;
  readonly #backoff: { minMs: number; maxMs: number };
  #socket: Socket | null = null;
  #ready = false;
  #buffer = "";
  #nextId = 0;
  #pending = new Map<string, Pending>();
  #eventListeners = new Set<(e: QmpEvent) => void>();
  #stateListeners = new Set<(connected: boolean) => void>();
  #closed = false;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #connecting = false;
  #greeting: ((ok: boolean, err?: QmpError) => void) | null = null;

  constructor(address: QmpAddress, opts: QmpClientOptions = {}) {
    this.#address = address;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#backoff = opts.backoff ?? { minMs: 100, maxMs: 5000 };
  }

  get connected(): boolean {
    return this.#ready;
  }

  /** Number of commands awaiting a reply (for tests: none may leak). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  onEvent(fn: (e: QmpEvent) => void): () => void {
    this.#eventListeners.add(fn);
    return () => this.#eventListeners.delete(fn);
  }

  onConnection(fn: (connected: boolean) => void): () => void {
    this.#stateListeners.add(fn);
    return () => this.#stateListeners.delete(fn);
  }

  /** Connects now, and again with backoff whenever the connection is lost, until close(). */
  start(): void {
    this.#closed = false;
    void this.#connectLoop(this.#backoff.minMs);
  }

  /** A new QEMU appeared: connect now rather than after the grown backoff. */
  reconnectNow(): void {
    if (this.#closed || this.#ready || this.#connecting) return;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    void this.#connectLoop(this.#backoff.minMs);
  }

  /** One connection attempt: greeting, then qmp_capabilities with out-of-band execution. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = this.#address.kind === "unix" ? createConnection(this.#address.path) : createConnection(this.#address.port, this.#address.host);
      this.#socket = sock;
      this.#buffer = "";
      sock.setEncoding("utf8");
      const fail = (e: QmpError) => {
        this.#greeting = null;
        reject(e);
      };
      const timer = setTimeout(() => {
        fail(new QmpError("timeout", "no QMP greeting"));
        sock.destroy();
      }, this.#timeoutMs);
      this.#greeting = (ok, err) => {
        clearTimeout(timer);
        this.#greeting = null;
        if (!ok) return fail(err ?? new QmpError("protocol", "bad greeting"));
        this.execute("qmp_capabilities", { enable: ["oob"] })
          .then(() => {
            this.#ready = true;
            for (const l of this.#stateListeners) l(true);
            resolve();
          })
          .catch((e: QmpError) => {
            sock.destroy();
            reject(e);
          });
      };
      sock.on("data", (chunk: string) => this.#onData(chunk));
      sock.on("error", (e) => {
        clearTimeout(timer);
        if (this.#greeting) fail(new QmpError("disconnected", e.message));
      });
      sock.on("close", () => {
        clearTimeout(timer);
        if (this.#greeting) fail(new QmpError("disconnected", "closed before the greeting"));
        this.#onClose(sock);
      });
    });
  }

  /** Runs a command; `oob` sends it out of band (it overtakes a blocked main loop). */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number; oob?: boolean } = {}): Promise<T> {
    const sock = this.#socket;
    if (!sock || sock.destroyed || (!this.#ready && command !== "qmp_capabilities")) {
      return Promise.reject(new QmpError("not_connected", `not connected to QMP (${command})`));
    }
    const id = `c${++this.#nextId}`;
    const msg = { [opts.oob ? "exec-oob" : "execute"]: command, ...(args ? { arguments: args } : {}), id };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpError("timeout", `${command}: no answer within ${opts.timeoutMs ?? this.#timeoutMs} ms`));
      }, opts.timeoutMs ?? this.#timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      sock.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** human-monitor-command: QEMU reports HMP failures as a non-empty string, not as a QMP error. */
  async hmp(commandLine: string, timeoutMs?: number): Promise<void> {
    const out = await this.execute<string>("human-monitor-command", { "command-line": commandLine }, timeoutMs ? { timeoutMs } : {});
    if (typeof out === "string" && out.trim() !== "") throw new QmpError("hmp_failed", out.trim());
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#socket?.destroy();
  }

  async #connectLoop(delay: number) {
    if (this.#closed || this.#connecting) return;
    this.#connecting = true;
    try {
      await this.connect();
    } catch {
      if (this.#closed) return;
      this.#retry = setTimeout(() => void this.#connectLoop(Math.min(delay * 2, this.#backoff.maxMs)), delay);
    } finally {
      this.#connecting = false;
    }
  }

  #onData(chunk: string) {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line) this.#onMessage(line);
    }
  }

  #onMessage(line: string) {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (this.#greeting) {
      this.#greeting("QMP" in msg);
      return;
    }
    if (typeof msg.event === "string") {
      const e = msg as unknown as QmpEvent;
      for (const l of this.#eventListeners) l(e);
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : null;
    const p = id ? this.#pending.get(id) : undefined;
    if (!p || !id) return; // a late reply to a command that timed out
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ("error" in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError("command_failed", err.desc ?? "QMP error", err.class));
    } else p.resolve(msg.return);
  }

  #onClose(sock: Socket) {
    if (sock !== this.#socket) return;
    const wasReady = this.#ready;
    this.#ready = false;
    this.#socket = null;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new QmpError("disconnected", "QMP connection closed"));
      this.#pending.delete(id);
    }
    if (wasReady) for (const l of this.#stateListeners) l(false);
    if (!this.#closed && wasReady) void this.#connectLoop(this.#backoff.minMs);
  }
}
