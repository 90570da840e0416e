#!/usr/bin/env node
import "../dist/cli/st.js";
