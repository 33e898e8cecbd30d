import type { TaskList } from 'graphile-worker'
import { forwardPosthogTask } from './analytics__forward_posthog.js'
import { deletePosthogPersonsTask } from './analytics__delete_posthog_persons.js'
import { expireDraftsTask } from './campaigns__expire_drafts.js'
import { pruneAnalysisCacheTask } from './assessments__prune_analysis_cache.js'
import { pruneClickDetailsTask } from './assessments__prune_click_details.js'
import { dispatchBroadcastTask } from './campaigns__dispatch_broadcast.js'
import { createPartitionsTask } from './analytics__create_partitions.js'
import { linkAnonymousTask } from './analytics__link_anonymous.js'
import { processEventsTask } from './analytics__process_events.js'
import { rollUpTask } from './analytics__roll_up.js'
import { rescoreTask } from './assessments__rescore.js'
import { maintainResultsTask } from './experiments__maintain_results.js'
import { abandonIdleSessionsTask } from './assessments__abandon_idle_sessions.js'
import { flowTimerTask } from './conversations__flow_timer.js'
import { runBotTask } from './conversations__run_bot.js'
import { processSubmissionTask } from './marketing__process_submission.js'
import { processSubmissionsTask } from './marketing__process_submissions.js'
import { unlockStaleJobsTask } from './ops__unlock_stale_jobs.js'
import { applyRetentionTask } from './privacy__apply_retention.js'
import { exportSubjectTask } from './privacy__export_subject.js'
import { eraseSubjectTask } from './privacy__erase_subject.js'
import { checkInactivityTask } from './onboarding__check_inactivity.js'
import { deliverWebhookTask } from './onboarding__deliver_webhook.js'
import { messageArrivedTask } from './onboarding__message_arrived.js'
import { sendWhatsAppNudgeTask } from './onboarding__send_whatsapp_nudge.js'
import { onboardingSettingsOf, scheduleInactivity } from '../../../domains/onboarding/service.js'
import type { TaskDeps } from './task-deps.js'
import { processDeliveriesTask } from './whatsapp__process_deliveries.js'
import { processDeliveryTask } from './whatsapp__process_delivery.js'
import { pruneDeliveriesTask } from './whatsapp__prune_deliveries.js'
import { gcSendQueuesTask } from './whatsapp__gc_send_queues.js'
import { scheduleLegacySendQueueSweep } from '../../../domains/whatsapp/outbound/queries.js'
import { rollUpDaysTask } from './analytics__roll_up_days.js'
import { sendMessageTask } from './whatsapp__send_message.js'
import { submitTemplateTask } from './whatsapp__submit_template.js'
import { analyzeResultTask } from './assessments__analyze_result.js'

/** Every task the worker runs, by name (`<domain>__<action>`). One file per task in this folder. */
export function buildTaskList(deps: TaskDeps): TaskList {
  return {
    whatsapp__process_deliveries: processDeliveriesTask(deps),
    whatsapp__process_delivery: processDeliveryTask(deps),
    whatsapp__prune_deliveries: pruneDeliveriesTask(deps),
    whatsapp__gc_send_queues: gcSendQueuesTask(deps),
    analytics__roll_up_days: rollUpDaysTask(deps),
    ops__unlock_stale_jobs: unlockStaleJobsTask(deps),
    whatsapp__send_message: sendMessageTask(deps),
    whatsapp__submit_template: submitTemplateTask(deps),
    conversations__run_bot: runBotTask(deps),
    conversations__flow_timer: flowTimerTask(deps),
    marketing__process_submissions: processSubmissionsTask(deps),
    marketing__process_submission: processSubmissionTask(deps),
    privacy__export_subject: exportSubjectTask(deps),
    privacy__apply_retention: applyRetentionTask(deps),
    privacy__erase_subject: eraseSubjectTask(deps),
    analytics__process_events: processEventsTask(deps),
    analytics__forward_posthog: forwardPosthogTask(deps),
    analytics__delete_posthog_persons: deletePosthogPersonsTask(deps),
    assessments__analyze_result: analyzeResultTask(deps),
    analytics__roll_up: rollUpTask(deps),
    experiments__maintain_results: maintainResultsTask(deps),
    analytics__create_partitions: createPartitionsTask(deps),
    analytics__link_anonymous: linkAnonymousTask(deps),
    onboarding__check_inactivity: checkInactivityTask(deps),
    onboarding__message_arrived: messageArrivedTask(deps),
    onboarding__deliver_webhook: deliverWebhookTask(deps),
    onboarding__send_whatsapp_nudge: sendWhatsAppNudgeTask(deps),
    assessments__rescore: rescoreTask(deps),
    assessments__abandon_idle_sessions: abandonIdleSessionsTask(deps),
    campaigns__expire_drafts: expireDraftsTask(deps),
    assessments__prune_analysis_cache: pruneAnalysisCacheTask(deps),
    assessments__prune_click_details: pruneClickDetailsTask(deps),
    campaigns__dispatch_broadcast: dispatchBroadcastTask(deps),
  }
}

/** Jobs armed when a worker starts: those that schedule themselves (the crontab re-arms them within a minute otherwise). */
export async function armSelfSchedulingJobs(deps: TaskDeps): Promise<void> {
  await scheduleInactivity({ sql: deps.sql, settings: onboardingSettingsOf(deps.config) }, deps.config.WORKER_POLL_INTERVAL_MS)
  // Not a self-scheduling job: the legacy (send, bot, broadcast) queue sweep once after a start, besides its hourly crontab line.
  await scheduleLegacySendQueueSweep(deps.sql, 'whatsapp__gc_send_queues', LEGACY_SEND_QUEUE_SWEEP_DELAY_SECONDS)
}

/** Long enough for a rolling deploy to retire the processes that may still enqueue under the old queue names. */
export const LEGACY_SEND_QUEUE_SWEEP_DELAY_SECONDS = 300
