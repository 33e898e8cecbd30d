/** Runs a bounded delete (`batch` rows at most per statement, each its own short transaction) until one deletes fewer than `batch`; the total deleted. */
export async function deleteInBatches(batch: number, deleteBatch: (limit: number) => Promise<number>): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await deleteBatch(batch)
    total += deleted
    if (deleted < batch) return total
  }
}
