# Finds Expat (expat): sets Expat_FOUND and the imported target Expat::Expat.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_Expat QUIET expat)
endif()
find_path(Expat_INCLUDE_DIR NAMES expat.h HINTS ${PC_Expat_INCLUDE_DIRS})
find_library(Expat_LIBRARY NAMES expat HINTS ${PC_Expat_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Expat REQUIRED_VARS Expat_LIBRARY Expat_INCLUDE_DIR)
if(Expat_FOUND AND NOT TARGET Expat::Expat)
  add_library(Expat::Expat UNKNOWN IMPORTED)
  set_target_properties(Expat::Expat PROPERTIES IMPORTED_LOCATION "${Expat_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${Expat_INCLUDE_DIR}")
endif()
mark_as_advanced(Expat_INCLUDE_DIR Expat_LIBRARY)
# expat without reparse deferral (before 2.6.0 and Debian's CVE-2023-52425 backport) delivers
# every stanza at once anyway; with it, mxgw turns it off on its stream parsers.
if(Expat_FOUND)
  include(CheckSymbolExists)
  set(CMAKE_REQUIRED_INCLUDES ${Expat_INCLUDE_DIR})
  set(CMAKE_REQUIRED_LIBRARIES ${Expat_LIBRARY})
  check_symbol_exists(XML_SetReparseDeferralEnabled expat.h GW_HAVE_REPARSE_DEFERRAL)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  if(GW_HAVE_REPARSE_DEFERRAL)
    set_property(TARGET Expat::Expat APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
                 GW_HAVE_REPARSE_DEFERRAL)
  endif()
endif()
