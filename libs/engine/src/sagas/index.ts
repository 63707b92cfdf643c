export * from './deadlines.projection';
export * from './deadline-scheduler';
