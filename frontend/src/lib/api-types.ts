// Generated from the gateway's /openapi.json by `agentops api-types`: do not edit.
// A test fails when this file is stale (tests/unit/test_api_types.py).

export type Action = "pause" | "restart" | "scale" | "delete" | "update" | "rollback"

export const ActionValues = ["pause", "restart", "scale", "delete", "update", "rollback"] as const

export type ActionResponse = {
  success: boolean
  status: "accepted"
  command_id: string
  plan_id: string
  action: string
  message: string
}

export type ActiveDeployment = {
  plan_id: string
  endpoint_name: string | null
  status: PlanStatus
  environment: Env | null
  instance_type: string | null
}

export type ActiveDeployments = {
  count: number
  deployments: ActiveDeployment[]
}

/** A request waiting for approvers (GET /approvals). */
export type Approval = {
  plan_id: string
  intent: string
  env: Env
  requested_by: string
  requested_at: string
  expires_at: string
  estimated_usd_per_hour: number
  artifact: SageMakerDeploymentConfig
  warnings: Finding[]
  evidence: Evidence[]
  plan_hash: string
  approvals_required: number
  approvers: string[]
  /** deploy: a new plan; restart or scale: a change of a live one */
  operation: "deploy" | "restart" | "scale"
  /** for a change: the configuration running now */
  previous: SageMakerDeploymentConfig | null
}

export const ApprovalOperationValues = ["deploy", "restart", "scale"] as const

export type ApprovalDecidedData = {
  decision: "approved" | "rejected" | "expired"
  approver: string
  reason: string
  plan_hash: string | null
}

export const ApprovalDecidedDataDecisionValues = ["approved", "rejected", "expired"] as const

export type ApproveRequest = {
  plan_id: string
  decision: "approved" | "rejected"
  /** optional; must match the API key's user when given */
  approver?: string | null
  reason?: string
  plan_hash?: string | null
}

export const ApproveRequestDecisionValues = ["approved", "rejected"] as const

export type ApproveResponse = {
  status: "approved" | "rejected"
  plan_id: string
  approver: string
  message: string
}

export const ApproveResponseStatusValues = ["approved", "rejected"] as const

/** One recorded event with its place in the chain. */
export type AuditEvent = {
  seq: number
  event_id: string
  /** the event type */
  type: "intent.received" | "plan.proposed" | "plan.failed" | "plan.rejected" | "approval.requested" | "approval.decided" | "deployment.requested" | "deployment.action" | "deployment.status" | "deployment.changed" | "budget.set" | "budget.threshold_crossed" | "schedule.set" | "notification.failed" | "message.rejected"
  plan_id: string | null
  actor: string
  occurred_at: string
  hash: string
  /** the event's payload as signed; its schema per type is in /asyncapi */
  data: Record<string, unknown>
  recorded_at: string
  prev_hash: string
}

export const AuditEventTypeValues = ["intent.received", "plan.proposed", "plan.failed", "plan.rejected", "approval.requested", "approval.decided", "deployment.requested", "deployment.action", "deployment.status", "deployment.changed", "budget.set", "budget.threshold_crossed", "schedule.set", "notification.failed", "message.rejected"] as const

export type AuditPage = {
  events: AuditEvent[]
  /** pass it back as `cursor` for the next page; null at the end */
  next_cursor: number | null
}

export type BudgetChanged = {
  status?: string
  scope: string
  message: string
}

export type BudgetRequest = {
  /** USD a month, over 0 */
  monthly_usd: number
  /** default: 50 % notify, 80 % of the forecast notify, 100 % block */
  thresholds?: Threshold_Input[] | null
}

export type BudgetView = {
  scope: string
  monthly_usd: number
  thresholds: Threshold_Output[]
  /** month to date: the audit-log meter, or what AWS billed (Cost Explorer) when that is more */
  spend_usd: number
  /** month to date by the audit-log meter (instance hours x catalog price) */
  metered_usd: number
  /** month to date by Cost Explorer (aws and sandbox modes; it lags by up to 24 hours); null when not read */
  billed_usd: number | null
  /** month to date plus the current run rate to the month's end */
  forecast_usd: number
  run_rate_usd_per_hour: number
  /** the thresholds the scope is past now */
  crossed: Threshold_Output[]
  /** where spend_usd comes from, and how current it is */
  basis: string
  /** who set it (None: the BUDGETS setting) */
  set_by: string | null
}

/** An update or rollback of the live endpoint: before and after, how traffic moves, and what it does to the hourly cost. */
export type Change = {
  operation: "update" | "rollback"
  before: SageMakerDeploymentConfig
  after: SageMakerDeploymentConfig
  strategy: UpdateStrategy
  usd_per_hour_before: number | null
  usd_per_hour_after: number
  cost_delta_usd_per_hour: number | null
  requested_at: string
}

export const ChangeOperationValues = ["update", "rollback"] as const

export type CommandRequest = {
  command: string
  /** staging, prod or dev; the stricter of this and the command's own wins */
  env?: Env | null
  /** accepted for the seed's clients and ignored: the user is the API key's */
  user_id?: string | null
  /** the seed's constraints (budget_usd_per_hour, instance_count, instance_type); what the command itself says wins */
  constraints?: Constraints
}

/** The seed's shape (command_id, status, result, error) plus flat fields for simple clients. */
export type CommandResponse = {
  command_id: string
  status: "success" | "validation_failed" | "accepted"
  result: CommandResult | null
  error: string | null
  plan_id: string
  message: string
  requires_approval: boolean
  action: string | null
  plan: DeploymentPlan | null
  validation_errors: string[]
}

export const CommandResponseStatusValues = ["success", "validation_failed", "accepted"] as const

/** The seed's `result` object. */
export type CommandResult = {
  plan_id: string
  status: PlanStatus
  artifact: SageMakerDeploymentConfig | null
  requires_approval: boolean
  errors: string[]
}

export type Constraints = {
  budget_usd_per_hour?: number | null
  instance_count?: number | null
  instance_type?: string | null
}

export type DecisionRequest = {
  reason?: string
  /** the plan_hash you reviewed (from GET /approvals); a changed plan is refused */
  plan_hash?: string | null
}

export type DeploymentActionData = {
  action: Action
  requested_by: string
  instance_count: number | null
  model_id: string | null
  instance_type: string | null
  strategy: UpdateStrategy | null
  reason: string | null
}

export type DeploymentDetail = {
  plan: PlanWithDetails
  /** the decision that settled its request */
  approval: ApprovalDecidedData | null
}

export type DeploymentList = {
  deployments: DeploymentPlan[]
  /** all plans matching, not only this page */
  count: number
  limit: number
  offset: number
}

/** The read model of one plan, as the API returns it (seed shape plus a few read-only extras). */
export type DeploymentPlan = {
  plan_id: string
  status: PlanStatus
  user_id: string
  intent: string
  env: Env
  artifact: SageMakerDeploymentConfig | null
  evidence: Evidence[]
  created_at: string
  updated_at: string
  validation_errors: string[]
  /** estimated spend so far (audit-log meter) */
  cost_usd: number | null
  /** why the deployment failed, when it did */
  reason: string | null
  /** the lifecycle actions this plan's status allows now */
  allowed_actions: Action[]
}

export type Env = "staging" | "prod" | "dev"

export const EnvValues = ["staging", "prod", "dev"] as const

export type Error = {
  /** what was wrong and what to do */
  detail: string
  /** each invalid field (422) */
  errors?: Record<string, unknown>[]
}

export type Evidence = {
  title: string
  snippet: string
  url: string
  score: number
}

export type Finding = {
  code: string
  message: string
  severity: "error" | "warning"
}

export const FindingSeverityValues = ["error", "warning"] as const

export type HTTPValidationError = {
  detail?: ValidationError[]
}

/** One event of a plan's timeline. */
export type HistoryEvent = {
  seq: number
  event_id: string
  /** the event type */
  type: "intent.received" | "plan.proposed" | "plan.failed" | "plan.rejected" | "approval.requested" | "approval.decided" | "deployment.requested" | "deployment.action" | "deployment.status" | "deployment.changed" | "budget.set" | "budget.threshold_crossed" | "schedule.set" | "notification.failed" | "message.rejected"
  plan_id: string | null
  actor: string
  occurred_at: string
  hash: string
  /** the event's payload as signed; its schema per type is in /asyncapi */
  data: Record<string, unknown>
}

export const HistoryEventTypeValues = ["intent.received", "plan.proposed", "plan.failed", "plan.rejected", "approval.requested", "approval.decided", "deployment.requested", "deployment.action", "deployment.status", "deployment.changed", "budget.set", "budget.threshold_crossed", "schedule.set", "notification.failed", "message.rejected"] as const

export type Me = {
  user_id: string
  roles: string[]
  key_id: string
}

export type MonthlyCost = {
  amount: number
  currency: string
  trend: "up" | "down" | "stable"
  percent_change: number
  period: Period
  estimated: boolean
  basis: string
}

export const MonthlyCostTrendValues = ["up", "down", "stable"] as const

export type Next = {
  at: string
  action: "restart" | "pause"
}

export const NextActionValues = ["restart", "pause"] as const

export type PendingApproval = {
  plan_id: string
  plan: Approval
  created_at: string
}

export type PendingApprovals = {
  count: number
  approvals: PendingApproval[]
}

/** A restart, scale, update or rollback of a live plan waiting for approvers; the plan keeps running as it is. */
export type PendingChange = {
  operation: "restart" | "scale" | "update" | "rollback"
  config: SageMakerDeploymentConfig
  previous: SageMakerDeploymentConfig | null
  estimated_usd_per_hour: number
  previous_usd_per_hour: number | null
  strategy: UpdateStrategy | null
  requested_by: string
  approvals_required: number
  plan_hash: string
  expires_at: string
}

export const PendingChangeOperationValues = ["restart", "scale", "update", "rollback"] as const

export type Period = {
  start: string
  end: string
}

export type PlanCost = {
  plan_id: string
  usd: number
  month_to_date_usd: number
  usd_per_hour: number
  running: boolean
  estimated: boolean
  basis: string
}

/** Everything about a plan besides the seed's fields, each set by the event named. */
export type PlanDetails = {
  /** plan.proposed: the catalog model */
  model_id: string | null
  /** plan.proposed: rules, or the LLM backend */
  planner: string | null
  /** plan.proposed: what the planner assumed */
  assumptions: string[]
  /** the SageMaker endpoint the plan owns */
  endpoint_name: string | null
  /** plan.failed: commands that would work */
  suggestions: string[]
  /** the guardrails' errors and warnings */
  findings: Finding[]
  /** why the last restart or scale of the live plan was refused */
  last_rejection: string[]
  estimated_usd_per_hour: number | null
  /** the approval request open now, if any */
  waiting: Waiting | null
  pending_change: PendingChange | null
  /** the decision that settled the request */
  approval: ApprovalDecidedData | null
  /** every decision that counted */
  decisions: ApprovalDecidedData[]
  last_action: DeploymentActionData | null
  /** how the executor ran it */
  mode: "dry-run" | "sandbox" | "aws" | null
  /** made, or in dry-run described */
  sagemaker_calls: SageMakerCall[]
  /** why the deployment failed (or the last status said so) */
  reason: string | null
  /** the test request after the last deploy: outcome, latency */
  smoke: SmokeTest | null
  /** the last request the executor got */
  operation: "deploy" | "restart" | "scale" | "update" | "rollback" | null
  /** the last update or rollback */
  change: Change | null
  /** every configuration the endpoint has had, oldest first */
  history: Revision[]
  /** schedule.set: when it runs, as last set (None: the plan's own idle rule) */
  schedule: ScheduleRecord | null
}

export type PlanStatus = "planning" | "validation_failed" | "pending_approval" | "rejected" | "deploying" | "deployed" | "updating" | "rolled_back" | "failed" | "paused" | "deleted"

export const PlanStatusValues = ["planning", "validation_failed", "pending_approval", "rejected", "deploying", "deployed", "updating", "rolled_back", "failed", "paused", "deleted"] as const

export type PlanWithDetails = {
  plan_id: string
  status: PlanStatus
  user_id: string
  intent: string
  env: Env
  artifact: SageMakerDeploymentConfig | null
  evidence: Evidence[]
  created_at: string
  updated_at: string
  validation_errors: string[]
  /** estimated spend so far (audit-log meter) */
  cost_usd: number | null
  /** why the deployment failed, when it did */
  reason: string | null
  /** the lifecycle actions this plan's status allows now */
  allowed_actions: Action[]
  /** assumptions, findings, SageMaker calls, the failure's reason */
  details: PlanDetails
}

/** One configuration the endpoint was given, and how that ended. */
export type Revision = {
  at: string
  operation: "deploy" | "restart" | "scale" | "update" | "rollback"
  config: SageMakerDeploymentConfig
  outcome: "deployed" | "rolled_back" | "failed"
  reason: string | null
}

export const RevisionOperationValues = ["deploy", "restart", "scale", "update", "rollback"] as const

export const RevisionOutcomeValues = ["deployed", "rolled_back", "failed"] as const

export type RollbackRequest = {
  strategy?: StrategyRequest | null
}

/** What decides when one deployment runs (either may be absent). */
export type Rules = {
  schedule: Schedule_Output | null
  /** pause after this many minutes without invocations (1-43200) */
  idle_pause_minutes: number | null
}

/** One SageMaker API call, made or (in dry-run) that would have been made. */
export type SageMakerCall = {
  operation: string
  params: Record<string, unknown>
  service: "sagemaker" | "cloudwatch" | "sagemaker-runtime"
}

export const SageMakerCallServiceValues = ["sagemaker", "cloudwatch", "sagemaker-runtime"] as const

/** What the executor deploys: one SageMaker real-time endpoint. */
export type SageMakerDeploymentConfig = {
  model_name: string
  endpoint_name: string
  instance_type: string
  instance_count: number
  rollback_alarms: string[]
  budget_usd_per_hour: number
  idle_pause_minutes: number | null
}

export type ScaleRequest = {
  /** 1 to 4; to stop paying for an endpoint, pause it (there is no scale to 0) */
  instance_count: number
}

/** Running from `start` to `stop` (local time in `timezone`) on `days`; paused otherwise. */
export type Schedule_Input = {
  /** cron-like: mon-fri, sat,sun, 1-5, *, weekdays */
  days?: string
  /** HH:MM, 24-hour clock: the endpoint is restarted then */
  start: string
  /** HH:MM: paused then (earlier than start: the next day) */
  stop: string
  /** an IANA time zone, e.g. UTC, Europe/Berlin */
  timezone?: string
}

/** Running from `start` to `stop` (local time in `timezone`) on `days`; paused otherwise. */
export type Schedule_Output = {
  /** cron-like: mon-fri, sat,sun, 1-5, *, weekdays */
  days: string
  /** HH:MM, 24-hour clock: the endpoint is restarted then */
  start: string
  /** HH:MM: paused then (earlier than start: the next day) */
  stop: string
  /** an IANA time zone, e.g. UTC, Europe/Berlin */
  timezone: string
}

export type ScheduleChanged = {
  status: "accepted"
  command_id: string
  plan_id: string
  message: string
  schedule: ScheduleView
}

export type ScheduleRecord = {
  rules: Rules
  set_by: string
  set_at: string
}

export type ScheduleRequest = {
  /** a weekly running window; None: no schedule */
  schedule?: Schedule_Input | null
  /** pause after this many whole minutes without invocations; None: never */
  idle_pause_minutes?: number | null
}

export type ScheduleView = {
  plan_id: string
  endpoint_name: string | null
  env: string
  status: PlanStatus
  schedule: Schedule_Output | null
  idle_pause_minutes: number | null
  /** set: through this API or a command; plan: the plan's own (its env's default); none */
  source: "set" | "plan" | "none"
  set_by: string | null
  set_at: string | null
  /** what the schedule wants now */
  wanted_now: "running" | "paused" | null
  /** the schedule's next restart or pause */
  next: Next | null
  /** how idleness is read, or why it is not */
  idle_check: string
}

export const ScheduleViewSourceValues = ["set", "plan", "none"] as const

/** One request to the endpoint once it is InService, in its container's wire format: `passed` (HTTP 200 with a body), `failed` (why), or `described` (dry-run: not sent). */
export type SmokeTest = {
  outcome: "passed" | "failed" | "described"
  latency_ms: number | null
  detail: string
}

export const SmokeTestOutcomeValues = ["passed", "failed", "described"] as const

/** How traffic moves to the new configuration; what is left out comes from UPDATE_STRATEGY. */
export type StrategyRequest = {
  /** all_at_once, canary or linear (blue/green) */
  shift?: "all_at_once" | "canary" | "linear" | null
  /** canary size or linear step, % of capacity */
  percent?: number | null
  /** how long each step is watched */
  wait_seconds?: number | null
}

export type Threshold_Input = {
  /** a share of the monthly budget, in % */
  percent: number
  basis?: "actual" | "forecast"
  action?: "notify" | "block" | "pause"
}

export const Threshold_InputBasisValues = ["actual", "forecast"] as const

export const Threshold_InputActionValues = ["notify", "block", "pause"] as const

export type Threshold_Output = {
  /** a share of the monthly budget, in % */
  percent: number
  basis: "actual" | "forecast"
  action: "notify" | "block" | "pause"
}

export const Threshold_OutputBasisValues = ["actual", "forecast"] as const

export const Threshold_OutputActionValues = ["notify", "block", "pause"] as const

/** What to change on the live endpoint (at least one of model, instance type, count). */
export type UpdateRequest = {
  /** a catalog model id, e.g. Qwen/Qwen2.5-7B-Instruct */
  model_id?: string | null
  /** an ml.* instance type */
  instance_type?: string | null
  instance_count?: number | null
  strategy?: StrategyRequest | null
}

/** How an update of a live endpoint moves traffic (SageMaker blue/green deployment guardrails): all at once, a canary share first, or linear steps, each held `wait_seconds` while the endpoint's alarms watch; an alarm in that time rolls the update back. */
export type UpdateStrategy = {
  shift: "all_at_once" | "canary" | "linear"
  /** canary size, or each linear step, in % of capacity */
  percent: number
  /** held at each step while the alarms watch */
  wait_seconds: number
}

export const UpdateStrategyShiftValues = ["all_at_once", "canary", "linear"] as const

export type ValidationError = {
  loc: (string | number)[]
  msg: string
  type: string
  input?: unknown
  ctx?: Record<string, unknown>
}

/** A request waiting for approvers: a new plan, or a change (restart, scale, update, rollback) of a live one. */
export type Waiting = {
  requested_by: string
  approvals_required: number
  plan_hash: string
  expires_at: string
  approved_by?: string[]
}
