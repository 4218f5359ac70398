/**
 * The pair object's one alarm serves several deadlines: the protocol's next one and the outbox's
 * next due delivery. It is re-armed only when the earliest of them moves earlier than the alarm
 * already set, or after the alarm fired (then `current` is null).
 */
export function alarmToSet(deadlines: (number | null)[], current: number | null): number | null {
  const due = deadlines.filter((d): d is number => d !== null);
  if (due.length === 0) return null;
  const next = Math.min(...due);
  return current === null || next < current ? next : null;
}
