/**
 * Tells a person, on the operator's own Pod, what keeps the operator from working and needs them
 * (RBAC that forbids the watch, a credential refused): `kubectl describe pod` shows the Event,
 * where a failing readiness probe shows only "HTTP probe failed with statuscode: 503".
 *
 * Guarantees: one Warning Event per distinct message, repeated at most once a minute while it
 * lasts (the recorder aggregates repeats into a count). Outside a Pod (no POD_NAME/POD_UID from
 * the downward API) it does nothing; a failed write is logged by the recorder, never thrown.
 */
import type { EventRecorder } from '../kube/events.js';

const REPEAT_MS = 60_000;

export function ownPodReporter(events: EventRecorder, namespace: string, pod: { name: string; uid: string } | undefined, now = Date.now) {
  let last: { message: string; at: number } | undefined;
  return (reason: string, message: string): void => {
    if (!pod) return;
    if (last && last.message === message && now() - last.at < REPEAT_MS) return;
    last = { message, at: now() };
    void events.record({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace, uid: pod.uid } }, 'Warning', reason, message);
  };
}
