/**
 * `npm run bench:campaigns-performance`: the campaign performance report section alone (ops/bench/campaigns/performance.ts).
 * The campaigns bench (ops/bench/campaigns.ts) runs the same section among its others.
 */
import { benchCampaignPerformance } from './campaigns/performance.js'

const result = await benchCampaignPerformance()
process.exit(result.same ? 0 : 1)
