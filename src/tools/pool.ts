/**
 * Run `fn` over `items` with at most `limit` calls in flight (default: one per core), keeping
 * the results in order. For work that is mostly external processes or thread-pool crypto, so
 * that many domains use every core without starting hundreds of processes at once.
 */
import { availableParallelism } from 'node:os';

export async function mapPool<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>, limit = availableParallelism()): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
