/** Condition reasons, documented in the README's status table: the one list of them. */
export const Reason = {
  Reconciled: 'Reconciled',
  Conflict: 'Conflict',
  ExternalMissing: 'ExternalMissing',
  RolledBack: 'RolledBack',
  PartiallyApplied: 'PartiallyApplied',
  VhostNotFound: 'VhostNotFound',
  BrokerUnavailable: 'BrokerUnavailable',
  InvalidSpec: 'InvalidSpec',
  SecretNotFound: 'SecretNotFound',
  InvalidConnection: 'InvalidConnection',
  Unauthorized: 'Unauthorized',
  TLSError: 'TLSError',
  Applying: 'Applying',
  ReconcileComplete: 'ReconcileComplete',
  AsExpected: 'AsExpected',
  EventsUnavailable: 'EventsUnavailable',
  EventsDisabled: 'EventsDisabled',
} as const;

export type ReasonName = (typeof Reason)[keyof typeof Reason];
