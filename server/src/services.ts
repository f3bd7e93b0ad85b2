// The domain services, one field per domain. Each domain module declares its own field by module augmentation
// (`declare module '../services.js' { interface Services { hosts: HostService } }`) and sets it in register().
export interface Services {}
