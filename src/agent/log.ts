/** JSON lines on stdout, one object per event (journald keeps them); quiet in steady state. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Logger {
  const at = (level: string) => (msg: string, fields: LogFields = {}) => write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }));
  return { info: at("info"), warn: at("warn"), error: at("error") };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
