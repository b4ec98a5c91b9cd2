import { createLogger } from '../core/logger';
import { connect, migrateDatabase } from '../db/client';
import { loadBotConfig } from './config';
import { startBotServer } from './server';

const config = loadBotConfig();
const log = createLogger({ name: 'bot', level: config.logLevel });
await migrateDatabase(config.databaseUrl);
const db = connect(config.databaseUrl);
const bot = await startBotServer(config, { db, log });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    await bot.close();
    await db.$client.end();
    process.exit(0);
  });
}
