export { createKafka, defaultMessagingLogger, ensureTopics, silentLogger } from './kafka';
export type { MessagingLogger, TopicSpec } from './kafka';
export * from './consumer-lag';
export * from './hr-consumer';
export * from './lifecycle-publisher';
export * from './messaging';
