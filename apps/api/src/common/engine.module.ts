import { DynamicModule, Global, Module } from '@nestjs/common';
import { Engine } from '@idlc/engine';

/** Makes the one Engine instance injectable everywhere. */
@Global()
@Module({})
export class EngineModule {
  static forEngine(engine: Engine): DynamicModule {
    return { module: EngineModule, providers: [{ provide: Engine, useValue: engine }], exports: [Engine] };
  }
}
