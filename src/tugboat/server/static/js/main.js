// Entry point: each page module registers its routes when imported; then the shell starts.
import { start } from './core.js';
import './login.js';
import './applist.js';
import './appdetail.js';
import './rolloutlist.js';
import './rollout.js';

start();
