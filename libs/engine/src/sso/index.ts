export * from './idps-file';
export * from './sql-replay-cache';
export * from './sso-login.service';
export * from './login-outcomes';
